// SPDX-License-Identifier: Apache-2.0
// A fixed set of threads that run one job at a time, split into parts.  The
// calling thread runs part 0, so a pool of size 1 has no threads at all.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace beluga::xfer {

class WorkerPool {
public:
	// Starts size-1 threads; throws std::system_error if one cannot start.
	explicit WorkerPool(unsigned size);
	~WorkerPool();
	WorkerPool(const WorkerPool &) = delete;
	WorkerPool &operator=(const WorkerPool &) = delete;

	unsigned size() const { return unsigned(threads_.size()) + 1; }

	// Runs fn(0) .. fn(parts-1), parts <= size(), and returns when all are done.
	// A worker's stores are visible to the caller afterwards (the completion
	// count is handed over under a mutex).
	void run(unsigned parts, const std::function<void(unsigned)> &fn);

private:
	void worker(unsigned index);
	void shutdown();

	std::vector<std::thread> threads_;
	std::mutex mu_;
	std::condition_variable start_cv_;
	std::condition_variable done_cv_;
	const std::function<void(unsigned)> *job_ = nullptr;
	unsigned parts_ = 0;
	unsigned pending_ = 0;
	uint64_t generation_ = 0;
	bool stop_ = false;
};

} // namespace beluga::xfer
