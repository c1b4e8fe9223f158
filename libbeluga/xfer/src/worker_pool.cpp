// SPDX-License-Identifier: Apache-2.0
#include "worker_pool.hpp"

namespace beluga::xfer {

WorkerPool::WorkerPool(unsigned size)
{
	try {
		for (unsigned i = 1; i < size; i++)
			threads_.emplace_back([this, i] { worker(i); });
	} catch (...) {
		shutdown(); // join the threads that did start
		throw;
	}
}

WorkerPool::~WorkerPool()
{
	shutdown();
}

void WorkerPool::shutdown()
{
	{
		std::lock_guard lk(mu_);
		stop_ = true;
	}
	start_cv_.notify_all();
	for (std::thread &t : threads_)
		if (t.joinable())
			t.join();
	threads_.clear();
}

void WorkerPool::run(unsigned parts, const std::function<void(unsigned)> &fn)
{
	if (parts == 0)
		return;
	{
		std::lock_guard lk(mu_);
		job_ = &fn;
		parts_ = parts;
		pending_ = parts - 1;
		generation_++;
	}
	if (parts > 1)
		start_cv_.notify_all();
	fn(0);
	std::unique_lock lk(mu_);
	done_cv_.wait(lk, [this] { return pending_ == 0; });
	job_ = nullptr;
}

void WorkerPool::worker(unsigned index)
{
	uint64_t seen = 0;
	std::unique_lock lk(mu_);
	for (;;) {
		start_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
		if (stop_)
			return;
		seen = generation_;
		if (index >= parts_)
			continue;
		const std::function<void(unsigned)> *job = job_;
		lk.unlock();
		(*job)(index);
		lk.lock();
		if (--pending_ == 0)
			done_cv_.notify_one();
	}
}

} // namespace beluga::xfer
