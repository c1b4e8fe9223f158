// SPDX-License-Identifier: Apache-2.0
// Buffer access for the binding: holding callers' buffers during a call,
// exporting region memory with the buffer protocol (counting exports so a
// mapping or pin cannot be closed under a live numpy array), and DLPack.
#include "common.hpp"

namespace bpy {

Buffer::Buffer(py::handle obj, bool writable)
{
	// Contiguous bytes only: a strided view has no single (pointer, length).
	int flags = PyBUF_ANY_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
	if (PyObject_GetBuffer(obj.ptr(), &view_, flags) != 0)
		throw py::error_already_set();
	held_ = true;
}

Buffer::~Buffer()
{
	if (held_)
		PyBuffer_Release(&view_);
}

Buffer::Buffer(Buffer &&o) noexcept : view_(o.view_), held_(o.held_)
{
	o.held_ = false;
}

BufferSet buffer_set(py::handle blocks, size_t n, bool writable, const char *what)
{
	BufferSet s;
	s.held.reserve(n);
	if (PyList_Check(blocks.ptr()) || PyTuple_Check(blocks.ptr())) {
		auto seq = py::reinterpret_borrow<py::sequence>(blocks);
		if (size_t(py::len(seq)) != n)
			throw py::value_error(std::string(what) + ": " + std::to_string(py::len(seq)) +
					      " buffers for " + std::to_string(n) + " keys");
		for (auto item : seq) {
			s.held.emplace_back(item, writable);
			s.parts.emplace_back(s.held.back().data(), s.held.back().size());
		}
		return s;
	}
	// One buffer holding n equal blocks (e.g. a [n, block_bytes] array).
	s.held.emplace_back(blocks, writable);
	size_t len = s.held.back().size();
	if (n == 0)
		return s;
	if (len % n)
		throw py::value_error(std::string(what) + ": a buffer of " + std::to_string(len) +
				      " bytes does not split into " + std::to_string(n) + " equal blocks");
	auto *base = static_cast<uint8_t *>(s.held.back().data());
	for (size_t i = 0; i < n; i++)
		s.parts.emplace_back(base + i * (len / n), len / n);
	return s;
}

BufferSet buffer_parts(py::handle blocks, size_t part_bytes, const char *what, const char *item_rule)
{
	BufferSet s;
	const bool seq = PyList_Check(blocks.ptr()) || PyTuple_Check(blocks.ptr());
	if (!seq && PyObject_CheckBuffer(blocks.ptr())) {
		s.held.emplace_back(blocks, false);
		const size_t len = s.held.back().size();
		if (len % part_bytes)
			throw py::value_error(std::string("packed ") + what + ": a buffer of " + std::to_string(len) +
					      " bytes is not a multiple of " + std::to_string(part_bytes));
		auto *base = static_cast<uint8_t *>(s.held.back().data());
		for (size_t off = 0; off < len; off += part_bytes)
			s.parts.emplace_back(base + off, part_bytes);
		return s;
	}
	for (auto item : py::reinterpret_borrow<py::iterable>(blocks)) {
		s.held.emplace_back(item, false);
		if (s.held.back().size() != part_bytes)
			throw py::value_error(std::string(item_rule) + ", this one has " +
					      std::to_string(s.held.back().size()));
		s.parts.emplace_back(s.held.back().data(), part_bytes);
	}
	return s;
}

void Exportable::ensure_no_exports(const char *action) const
{
	if (exports > 0) {
		PyErr_Format(PyExc_BufferError, "cannot %s: %d view(s) of its memory still exist "
			     "(delete the arrays/memoryviews/tensors first)", action, exports);
		throw py::error_already_set();
	}
}

// ---------------------------------------------------------------- DLPack
// The ABI of dlpack.h v0.x (stable since 2021), declared here so the module
// needs no extra header: what torch.utils.dlpack.from_dlpack() consumes.
namespace {

struct DLDevice {
	int32_t device_type; // kDLCPU = 1
	int32_t device_id;
};
struct DLDataType {
	uint8_t code; // kDLUInt = 1
	uint8_t bits;
	uint16_t lanes;
};
struct DLTensor {
	void *data;
	DLDevice device;
	int32_t ndim;
	DLDataType dtype;
	int64_t *shape;
	int64_t *strides;
	uint64_t byte_offset;
};
struct DLManagedTensor {
	DLTensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(DLManagedTensor *self);
};

// Keeps the exporting object (and its export count) alive as long as the
// consumer's tensor lives.
struct DLContext {
	DLManagedTensor managed;
	int64_t shape[1];
	PyObject *owner;
	Exportable *exportable;
};

void dl_deleter(DLManagedTensor *self)
{
	auto *ctx = static_cast<DLContext *>(self->manager_ctx);
	// Consumers may drop tensors on threads that do not hold the GIL.
	PyGILState_STATE st = PyGILState_Ensure();
	ctx->exportable->exports--;
	Py_DECREF(ctx->owner);
	PyGILState_Release(st);
	delete ctx;
}

void capsule_destructor(PyObject *capsule)
{
	// Only a capsule nobody consumed still carries its original name.
	if (!PyCapsule_IsValid(capsule, "dltensor"))
		return;
	auto *m = static_cast<DLManagedTensor *>(PyCapsule_GetPointer(capsule, "dltensor"));
	if (m && m->deleter)
		m->deleter(m);
}

} // namespace

py::capsule make_dlpack(py::handle owner, Exportable &e)
{
	if (!e.buf_data())
		throw py::value_error(e.closed_message());
	auto *ctx = new DLContext{};
	ctx->shape[0] = int64_t(e.buf_len());
	ctx->owner = owner.ptr();
	ctx->exportable = &e;
	DLTensor &t = ctx->managed.dl_tensor;
	t.data = e.buf_data();
	t.device = {1, 0};
	t.ndim = 1;
	t.dtype = {1, 8, 1};
	t.shape = ctx->shape;
	t.strides = nullptr;
	t.byte_offset = 0;
	ctx->managed.manager_ctx = ctx;
	ctx->managed.deleter = dl_deleter;
	Py_INCREF(ctx->owner);
	e.exports++;
	PyObject *cap = PyCapsule_New(&ctx->managed, "dltensor", capsule_destructor);
	if (!cap) {
		dl_deleter(&ctx->managed);
		throw py::error_already_set();
	}
	return py::reinterpret_steal<py::capsule>(cap);
}

} // namespace bpy
