// SPDX-License-Identifier: Apache-2.0
// beluga._beluga: the compiled half of the `beluga` Python package.
#include "common.hpp"

#include <beluga/beluga.h>
#include <beluga/kvcache.h>

PYBIND11_MODULE(_beluga, m)
{
	m.doc() = "Beluga: CXL memory pools and the shared KV-block store (see Documentation/python.md)";
	bpy::register_errors(m);
	bpy::register_pool(m);
	bpy::register_region(m);
	bpy::register_mapping(m);
	bpy::register_gpu_registration(m);
	bpy::register_fingerprint(m);
	bpy::register_pin(m);
	bpy::register_kvcache(m);
	bpy::register_reservation(m);
	bpy::register_keys(m);
	bpy::register_xfer(m);
	bpy::register_xfer_cuda(m);

	m.attr("KEY_BYTES") = BELUGA_KVC_KEY_BYTES;
	m.attr("EXISTS") = BELUGA_KVC_EXISTS;
	m.attr("REGION_ALIGN") = BELUGA_REGION_ALIGN;
	m.attr("FORMAT_VERSION") = py::make_tuple(BELUGA_KVC_FORMAT_MAJOR, BELUGA_KVC_FORMAT_MINOR);
	m.attr("KVC_EFINGERPRINT") = BELUGA_KVC_EFINGERPRINT;
	m.attr("KVC_EFORMAT") = BELUGA_KVC_EFORMAT;
	m.attr("KVC_EVERSION") = BELUGA_KVC_EVERSION;
	m.attr("KVC_ENOTREADY") = BELUGA_KVC_ENOTREADY;
	m.attr("EDRIVER_TOO_OLD") = BELUGA_EDRIVER_TOO_OLD;
	m.attr("ELIBRARY_TOO_OLD") = BELUGA_ELIBRARY_TOO_OLD;
	m.attr("ENODRIVER") = BELUGA_ENODRIVER;
	m.attr("ENOGPU") = BELUGA_ENOGPU;
	m.attr("ENOCUDA") = BELUGA_ENOCUDA;
	m.attr("EPLACEMENT") = BELUGA_EPLACEMENT;
}
