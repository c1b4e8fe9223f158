// SPDX-License-Identifier: Apache-2.0
// A small pool of copy threads owned by one handle.  run() hands out the
// indices 0..n-1 to the caller and the workers and returns when all are done.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bkv {

class Copier {
public:
	explicit Copier(unsigned threads); // including the caller; >= 1
	~Copier();
	Copier(const Copier &) = delete;
	Copier &operator=(const Copier &) = delete;

	unsigned threads() const { return threads_; }
	void run(size_t n, const std::function<void(size_t)> &fn);

private:
	void worker();
	void drain(const std::function<void(size_t)> &fn, size_t n);

	unsigned threads_;
	std::vector<std::thread> pool_;
	std::mutex run_mu_; // one run() at a time
	std::mutex mu_;
	std::condition_variable cv_, done_cv_;
	uint64_t generation_ = 0;
	bool stop_ = false;
	const std::function<void(size_t)> *fn_ = nullptr;
	size_t n_ = 0;
	std::atomic<size_t> next_{0};
	size_t done_ = 0;
	unsigned busy_ = 0;
};

} // namespace bkv
