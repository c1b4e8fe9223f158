// SPDX-License-Identifier: Apache-2.0
// BelugaError: an OSError subclass, so `except OSError` catches it and
// e.errno / e.strerror carry the code and the library's sentence.  Library
// codes without an errno name (BELUGA_E*, BELUGA_KVC_E*) keep their value.
// The C++ API's exceptions (beluga::Error, beluga::kvc::Error,
// beluga::xfer::Error) become BelugaError here; its std::invalid_argument becomes ValueError (pybind11).
#include "common.hpp"

#include <beluga/beluga.hpp>
#include <beluga/kvcache.hpp>
#include <beluga/xfer.hpp>

#include <cstring>

namespace bpy {

namespace {

PyObject *belugaerror_type = nullptr;

void raise(int code, const char *msg)
{
	PyObject *args = Py_BuildValue("(is)", code, msg);
	if (args) {
		PyErr_SetObject(belugaerror_type, args);
		Py_DECREF(args);
	}
}

} // namespace

void register_errors(py::module_ &m)
{
	belugaerror_type = PyErr_NewExceptionWithDoc(
		"beluga.BelugaError",
		"A Beluga library call failed.  An OSError: .errno is the error code "
		"(an errno value, or a BELUGA_E*/KVC_E* code above 1000) and "
		".strerror the library's sentence (what failed and what to do).",
		PyExc_OSError, nullptr);
	if (!belugaerror_type)
		throw py::error_already_set();
	m.attr("BelugaError") = py::handle(belugaerror_type);
	py::register_exception_translator([](std::exception_ptr p) {
		try {
			if (p)
				std::rethrow_exception(p);
		} catch (const beluga::Error &e) {
			raise(e.code(), e.what());
		} catch (const beluga::kvc::Error &e) {
			raise(e.code().value(), e.what());
		} catch (const beluga::xfer::Error &e) {
			raise(e.code().value(), e.what());
		}
	});
	m.def("strerror", [](int code) {
		int c = code < 0 ? -code : code;
		return std::string(c > 1100 && c < 1200 ? beluga_kvc_strerror(c) : beluga_strerror(c));
	},
	      py::arg("code"), "The library's sentence for an error code (either sign).");
}

} // namespace bpy
