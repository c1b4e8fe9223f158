// SPDX-License-Identifier: Apache-2.0
// Block keys: vLLM's sha256_cbor chain (root_key, hash_block, hash_tokens),
// byte-identical to vllm.v1.core.kv_cache_utils.hash_block_tokens with
// sha256_cbor, so keys computed here equal vLLM's block hashes.
#include "common.hpp"

#include <beluga/kvcache.hpp>

#include <cstring>
#include <deque>

namespace bpy {

namespace {

// Python extra keys -> a tree of beluga_kvc_item; the deques keep every
// node and string at a stable address for the duration of the call.
struct ItemTree {
	std::deque<beluga_kvc_item> nodes;
	std::deque<std::vector<beluga_kvc_item>> arrays;
	std::deque<std::string> strings;

	beluga_kvc_item convert(py::handle o, int depth)
	{
		if (depth > 16)
			throw py::value_error("extra keys nested deeper than 16");
		beluga_kvc_item it{};
		if (o.is_none()) {
			it.type = BELUGA_KVC_ITEM_NULL;
		} else if (PyBool_Check(o.ptr())) {
			throw py::type_error("extra keys: bool is not supported (vLLM passes none)");
		} else if (PyLong_Check(o.ptr())) {
			it.type = BELUGA_KVC_ITEM_INT;
			it.i = o.cast<int64_t>();
		} else if (PyUnicode_Check(o.ptr())) {
			it.type = BELUGA_KVC_ITEM_TEXT;
			strings.push_back(o.cast<std::string>());
			it.ptr = strings.back().data();
			it.len = strings.back().size();
		} else if (PyBytes_Check(o.ptr()) || PyByteArray_Check(o.ptr())) {
			it.type = BELUGA_KVC_ITEM_BYTES;
			strings.push_back(std::string(py::bytes(py::reinterpret_borrow<py::object>(o))));
			it.ptr = strings.back().data();
			it.len = strings.back().size();
		} else if (PyTuple_Check(o.ptr()) || PyList_Check(o.ptr())) {
			std::vector<beluga_kvc_item> v;
			for (auto e : py::reinterpret_borrow<py::sequence>(o))
				v.push_back(convert(e, depth + 1));
			arrays.push_back(std::move(v));
			it.type = BELUGA_KVC_ITEM_ARRAY;
			it.ptr = arrays.back().data();
			it.len = arrays.back().size();
		} else {
			throw py::type_error("extra keys: None, int, str, bytes, tuple or list, not " +
					     std::string(py::str(py::type::handle_of(o))));
		}
		return it;
	}
};

std::vector<uint32_t> tokens_of(py::handle tokens)
{
	std::vector<uint32_t> v;
	for (auto t : py::reinterpret_borrow<py::iterable>(tokens)) {
		long long x = t.cast<long long>();
		if (x < 0 || x > UINT32_MAX)
			throw py::value_error("token ids are 0 .. 2**32-1, not " + std::to_string(x));
		v.push_back(uint32_t(x));
	}
	return v;
}

beluga::kvc::Key key32(py::handle b, const char *what)
{
	Buffer buf(b, false);
	if (buf.size() != BELUGA_KVC_KEY_BYTES)
		throw py::value_error(std::string(what) + " must be 32 bytes");
	beluga::kvc::Key k;
	std::memcpy(k.data(), buf.data(), k.size());
	return k;
}

py::bytes key_bytes(const beluga::kvc::Key &k)
{
	return py::bytes(reinterpret_cast<const char *>(k.data()), k.size());
}

} // namespace

void register_keys(py::module_ &m)
{
	m.def("root_key", [](const std::string &seed) { return key_bytes(beluga::kvc::root_key(seed)); },
	      py::arg("seed"), "SHA-256 of CBOR(seed): vLLM's NONE_HASH for sha256_cbor with PYTHONHASHSEED=seed.");

	m.def("hash_block", [](py::handle parent, py::handle tokens, py::object extra) {
		auto p = key32(parent, "parent");
		auto t = tokens_of(tokens);
		ItemTree tree;
		beluga_kvc_item root{};
		bool has_extra = !extra.is_none();
		if (has_extra)
			root = tree.convert(extra, 0);
		return key_bytes(beluga::kvc::hash_block(p, t, has_extra ? &root : nullptr));
	}, py::arg("parent"), py::arg("tokens"), py::arg("extra") = py::none(),
	   "One block's key: SHA-256(CBOR([parent, tokens, extra])) = vLLM's hash_block_tokens(sha256_cbor, ...).");

	m.def("hash_tokens", [](py::handle root, py::handle tokens, uint32_t block_size) {
		auto r = key32(root, "root");
		auto t = tokens_of(tokens);
		if (block_size == 0)
			throw py::value_error("block_size must be positive");
		auto keys = nogil([&] { return beluga::kvc::hash_tokens(r, t, block_size); });
		py::list out;
		for (const auto &k : keys)
			out.append(key_bytes(k));
		return out;
	}, py::arg("root"), py::arg("tokens"), py::arg("block_size") = 16,
	   "Keys of every full block of `tokens`, chained from `root` (no extra keys).");
}

} // namespace bpy
