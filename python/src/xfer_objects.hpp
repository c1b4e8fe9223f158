// SPDX-License-Identifier: Apache-2.0
// The data path's Python-visible objects, shared by the CPU binding
// (bind_xfer.cpp) and the GPU binding (bind_xfer_cuda.cpp): a paged cache
// (beluga::xfer::Paged) with what keeps its memory alive, and the checked
// Transfer both copiers take.
#pragma once

#include "common.hpp"

#include <beluga/xfer.hpp>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace bpy {

// A paged cache plus whatever keeps its memory alive (tensors, buffers).
// device: -1 for host memory (the CPU path), else the CUDA device ordinal
// whose memory the layer bases address (the GPU path).
struct PagedKV {
	explicit PagedKV(beluga::xfer::Paged p) : paged(std::move(p)) {}
	beluga::xfer::Paged paged;
	int device = -1;
	py::list owners;
	std::vector<std::unique_ptr<Buffer>> held;
};

// "gather" / "scatter".
beluga::xfer::Dir dir_of(const std::string &s);
// layers=None (all) or (begin, end).
std::optional<beluga::xfer::LayerRange> layers_of(py::handle layers);

// A GPU transfer from raw addresses: block ids and device-visible pool block
// addresses (ints), checked without touching a GPU.  Refuses a PagedKV of
// host memory (device -1) with a message saying which path to use.
beluga::xfer::Transfer gpu_transfer(const PagedKV &pk, py::sequence block_ids, py::sequence pool_addresses,
				    beluga::xfer::Dir dir, py::handle layers);

} // namespace bpy
