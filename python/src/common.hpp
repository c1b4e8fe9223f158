// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the Python binding: errors, buffer access, and the
// registration function of each bound class (bind_<class>.cpp).  The binding
// is built on the public C++ API (beluga/beluga.hpp, beluga/kvcache.hpp,
// beluga/xfer.hpp and, when built with CUDA, beluga/xfer_cuda.hpp).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace bpy {

// Library failures reach Python as BelugaError(code, message): the C++ API's
// beluga::Error, beluga::kvc::Error and beluga::xfer::Error (translated in
// bind_errors.cpp).

// f() with the GIL released: for every call that copies, scans or waits.
// Exceptions thrown by f are C++ ones and propagate once the GIL is back.
template <class F> decltype(auto) nogil(F &&f)
{
	py::gil_scoped_release release;
	return std::forward<F>(f)();
}

// A dtype argument: a BELUGA_KV_* number, a name ("bf16", "bfloat16"), or a
// torch dtype (torch.bfloat16).
uint32_t dtype_of(py::handle d);

// A held Py_buffer (released on destruction); contiguous bytes.
class Buffer {
public:
	Buffer(py::handle obj, bool writable);
	~Buffer();
	Buffer(Buffer &&o) noexcept;
	Buffer(const Buffer &) = delete;
	Buffer &operator=(const Buffer &) = delete;
	Buffer &operator=(Buffer &&) = delete;
	void *data() const { return view_.buf; }
	size_t size() const { return size_t(view_.len); }

private:
	Py_buffer view_{};
	bool held_ = false;
};

// Many buffers, or one buffer cut into `n` equal parts: the blocks of a batch.
struct BufferSet {
	std::vector<Buffer> held;
	std::vector<std::pair<void *, size_t>> parts;
};
BufferSet buffer_set(py::handle blocks, size_t n, bool writable, const char *what);
// Read-only parts of `part_bytes` each: from any iterable of buffers of that
// size (ValueError "<item_rule>, this one has N" otherwise), or from one
// buffer (not a list/tuple) of a multiple of it.
BufferSet buffer_parts(py::handle blocks, size_t part_bytes, const char *what, const char *item_rule);

// Export-counting buffer protocol for handle objects that must not be
// closed while views of their memory exist (like mmap.mmap).  T provides
// buf_data(), buf_len(), buf_readonly() and an `exports` counter.
struct Exportable {
	int exports = 0;
	virtual ~Exportable() = default;
	virtual void *buf_data() const = 0;
	virtual size_t buf_len() const = 0;
	virtual bool buf_readonly() const = 0;
	virtual const char *closed_message() const = 0;
	// Raises BufferError when views exist.
	void ensure_no_exports(const char *action) const;
};
// Buffer-protocol slots for a bound class T derived from Exportable:
// py::class_<T>(m, "T", py::custom_type_setup(install_buffer_protocol<T>)).
template <class T> int get_buffer(PyObject *self, Py_buffer *view, int flags)
{
	T *t = nullptr;
	try {
		t = py::handle(self).cast<T *>();
	} catch (const std::exception &) {
		PyErr_SetString(PyExc_TypeError, "object not initialised");
		return -1;
	}
	if (!t->buf_data()) {
		PyErr_SetString(PyExc_ValueError, t->closed_message());
		return -1;
	}
	if (PyBuffer_FillInfo(view, self, t->buf_data(), Py_ssize_t(t->buf_len()),
			      t->buf_readonly() ? 1 : 0, flags) != 0)
		return -1;
	t->exports++;
	return 0;
}
template <class T> void release_buffer(PyObject *self, Py_buffer *)
{
	try {
		py::handle(self).cast<T *>()->exports--;
	} catch (const std::exception &) {
	}
}
template <class T> void install_buffer_protocol(PyHeapTypeObject *heap_type)
{
	heap_type->as_buffer.bf_getbuffer = get_buffer<T>;
	heap_type->as_buffer.bf_releasebuffer = release_buffer<T>;
	heap_type->ht_type.tp_as_buffer = &heap_type->as_buffer;
}
// DLPack (uint8, 1-D, CPU) capsule over an Exportable Python object.
py::capsule make_dlpack(py::handle owner, Exportable &e);

void register_errors(py::module_ &m);
void register_pool(py::module_ &m);
void register_region(py::module_ &m);
void register_mapping(py::module_ &m);
void register_fingerprint(py::module_ &m);
void register_pin(py::module_ &m);
void register_kvcache(py::module_ &m);
void register_reservation(py::module_ &m);
void register_keys(py::module_ &m);
void register_xfer(py::module_ &m);
void register_xfer_cuda(py::module_ &m);
void register_gpu_registration(py::module_ &m);

} // namespace bpy
