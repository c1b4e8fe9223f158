// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool gpu - GPU availability, and a register/verify/
// unregister round trip of a region for one device.
#include <cstdio>

#include "commands.hpp"

namespace tool {

struct GpuArgs {
	std::string region;
	int device = 0;
	bool read_only = false;
	Output out;
};

static int show_gpus(const Globals &g, const GpuArgs &a)
{
	auto pool = open_pool(g);
	int n = 0, ret = beluga_gpu_count(pool.get(), &n);
	bool cuda = ret != -BELUGA_ENOCUDA;

	if (a.out.json) {
		json j = { { "cuda_support", cuda }, { "gpus", ret ? 0 : n } };

		if (ret)
			j["error"] = beluga_strerror(ret);
		std::printf("%s\n", j.dump(2).c_str());
	} else {
		std::printf("CUDA support: %s\n", cuda ? "built in" : "not built in");
		if (ret)
			std::printf("GPUs:         none (%s)\n", beluga_strerror(ret));
		else
			std::printf("GPUs:         %d\n", n);
	}
	return ret ? exit_code(-ret) : kOk;
}

// Map the region, register it (chunked, placement verified), unregister.
static int check_region(const Globals &g, const GpuArgs &a)
{
	auto pool = open_pool(g);
	auto region = pool.open_region(a.region, a.read_only);
	auto map = region.map(a.read_only ? beluga::Prot::Read : beluga::Prot::ReadWrite);
	auto reg = map.register_gpu(a.device, a.read_only ? BELUGA_GPU_READONLY : 0);

	if (a.out.json) {
		json j = { { "region", a.region }, { "device", a.device },
			   { "bytes", map.size() }, { "chunks", reg.chunks() },
			   { "placement_verified", true } };
		std::printf("%s\n", j.dump(2).c_str());
	} else {
		std::printf("registered %s (%s) with GPU %d in %zu chunk(s); placement "
			    "unchanged; unregistered\n", a.region.c_str(),
			    size_text(map.size(), a.out).c_str(), a.device, reg.chunks());
	}
	return kOk;
}

Subcommand gpu_command()
{
	return { "gpu",
		 "Show CUDA devices; with --register, check that a region registers "
		 "with a GPU and stays on its NUMA nodes",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<GpuArgs>();

			 sub.add_option("-r,--register", a->region,
					"Region to map, register (cudaHostRegister), verify and unregister");
			 sub.add_option("-d,--device", a->device, "CUDA device index")
				 ->capture_default_str();
			 sub.add_flag("--read-only", a->read_only,
				      "Open and register the region read-only");
			 add_output_flags(sub, a->out);
			 return [&g, a] {
				 return a->region.empty() ? show_gpus(g, *a) : check_region(g, *a);
			 };
		 } };
}

} // namespace tool
