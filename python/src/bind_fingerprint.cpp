// SPDX-License-Identifier: Apache-2.0
// beluga.Fingerprint: struct beluga_kvc_fingerprint, built with
// beluga::kvc::make_fingerprint.
#include "objects.hpp"

namespace bpy {

namespace {

beluga_kvc_fingerprint make(const std::string &model_id, const std::string &hash_fn,
			    const std::string &hash_seed, uint32_t num_layers, uint32_t block_size,
			    uint32_t num_kv_heads, uint32_t head_size, py::handle dtype,
			    uint32_t tp_rank, uint32_t tp_size, const std::string &layout,
			    uint64_t payload_bytes)
{
	beluga::kvc::FingerprintFields f;
	f.model_id = model_id;
	f.hash_fn = hash_fn;
	f.hash_seed = hash_seed;
	f.shape = { num_layers, block_size, num_kv_heads, head_size, dtype_of(dtype), 0 };
	f.tp_rank = tp_rank;
	f.tp_size = tp_size;
	f.layout = beluga::kvc::parse_layout(layout);
	f.payload_bytes = payload_bytes;
	return beluga::kvc::make_fingerprint(f);
}

} // namespace

void register_fingerprint(py::module_ &m)
{
	using FP = beluga_kvc_fingerprint;
	py::class_<FP>(m, "Fingerprint", R"doc(
What makes two instances' KV blocks interchangeable: model, dtype, shape,
tensor-parallel rank, layout and the key hash.  A cache refuses to attach
with a different fingerprint (BelugaError errno KVC_EFINGERPRINT, naming the
field) instead of silently missing.  payload_bytes 0 means "computed from the
shape" (kv_block layout); opaque layout needs it.
)doc")
		.def(py::init(&make), py::kw_only(), py::arg("model_id"),
		     py::arg("hash_fn") = "sha256_cbor", py::arg("hash_seed") = "",
		     py::arg("num_layers") = 0, py::arg("block_size") = 16, py::arg("num_kv_heads") = 0,
		     py::arg("head_size") = 0, py::arg("dtype") = "bf16", py::arg("tp_rank") = 0,
		     py::arg("tp_size") = 1, py::arg("layout") = "kv_block", py::arg("payload_bytes") = 0)
		.def_property_readonly("model_id", [](const FP &f) { return std::string(f.model_id); })
		.def_property_readonly("hash_fn", [](const FP &f) { return std::string(f.hash_fn); })
		.def_property_readonly("hash_seed", [](const FP &f) { return std::string(f.hash_seed); })
		.def_property_readonly("num_layers", [](const FP &f) { return f.shape.num_layers; })
		.def_property_readonly("block_size", [](const FP &f) { return f.shape.block_size; })
		.def_property_readonly("num_kv_heads", [](const FP &f) { return f.shape.num_kv_heads; })
		.def_property_readonly("head_size", [](const FP &f) { return f.shape.head_size; })
		.def_property_readonly("dtype", [](const FP &f) { return beluga::kvc::dtype_name(f.shape.dtype); })
		.def_property_readonly("tp_rank", [](const FP &f) { return f.tp_rank; })
		.def_property_readonly("tp_size", [](const FP &f) { return f.tp_size; })
		.def_property_readonly("layout", [](const FP &f) { return beluga::kvc::layout_name(f.layout); })
		.def_property_readonly("payload_bytes", [](const FP &f) { return f.payload_bytes; })
		.def("to_dict", &fingerprint_dict)
		.def("__eq__", &beluga::kvc::same_fingerprint)
		.def("__repr__", [](const FP &f) {
			return "Fingerprint(" + py::str(fingerprint_dict(f)).cast<std::string>() + ")";
		});
}

} // namespace bpy
