// SPDX-License-Identifier: Apache-2.0
// Blocks cut into pieces for the copy threads: each piece is copied and
// summed on its own, and a block's checksum combines its pieces in order.
// Used by put (copy in) and get (copy out).
#pragma once

#include "checksum.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bkv {

struct Piece {
	size_t job;	   // index of the block in the caller's batch
	uint64_t off, len; // bytes of the block this piece covers
	F64 sum;	   // filled by the copy
};

class Pieces {
public:
	// 512 KiB, a multiple of 64: pieces of a line-aligned block stay aligned.
	static constexpr uint64_t kBytes = 512 * 1024;

	// Block j of @jobs is @len_of(j) bytes; it is one piece when @split is
	// false (one copy thread), else pieces of kBytes.
	template <class LenOf> Pieces(size_t jobs, bool split, LenOf len_of) : first_(jobs + 1)
	{
		for (size_t j = 0; j < jobs; j++) {
			uint64_t len = len_of(j), step = split ? kBytes : std::max<uint64_t>(len, 1);
			first_[j] = pieces_.size();
			for (uint64_t off = 0; off < len; off += step)
				pieces_.push_back({j, off, std::min(step, len - off), F64{}});
		}
		first_[jobs] = pieces_.size();
	}

	size_t size() const { return pieces_.size(); }
	Piece &operator[](size_t i) { return pieces_[i]; }

	// The checksum of block @j (@len bytes) once every piece was summed.
	uint64_t checksum(size_t j, uint64_t len) const
	{
		F64 s;
		for (size_t k = first_[j]; k < first_[j + 1]; k++)
			f64_combine(s, pieces_[k].sum);
		return f64_final(s, len);
	}

private:
	std::vector<Piece> pieces_;
	std::vector<size_t> first_; // first piece of each block, and the end
};

} // namespace bkv
