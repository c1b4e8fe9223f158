// SPDX-License-Identifier: Apache-2.0
// Copier: threads start on the first run() that has work for them, so that a
// handle used only for lookups never starts any.
#include "copier.hpp"

namespace bkv {

Copier::Copier(unsigned threads) : threads_(threads ? threads : 1) {}

Copier::~Copier()
{
	{
		std::lock_guard<std::mutex> l(mu_);
		stop_ = true;
	}
	cv_.notify_all();
	for (auto &t : pool_)
		t.join();
}

void Copier::drain(const std::function<void(size_t)> &fn, size_t n)
{
	size_t done = 0;
	for (size_t i; (i = next_.fetch_add(1)) < n; done++)
		fn(i);
	std::lock_guard<std::mutex> l(mu_);
	done_ += done;
	if (done_ == n_)
		done_cv_.notify_all();
}

void Copier::worker()
{
	uint64_t seen = 0;
	for (;;) {
		const std::function<void(size_t)> *fn;
		size_t n;
		{
			std::unique_lock<std::mutex> l(mu_);
			cv_.wait(l, [&] { return stop_ || generation_ != seen; });
			if (stop_)
				return;
			seen = generation_;
			fn = fn_;
			n = n_;
			if (!fn) // woke after that run finished
				continue;
			busy_++;
		}
		drain(*fn, n);
		std::lock_guard<std::mutex> l(mu_);
		if (--busy_ == 0)
			done_cv_.notify_all();
	}
}

void Copier::run(size_t n, const std::function<void(size_t)> &fn)
{
	if (n <= 1 || threads_ == 1) {
		for (size_t i = 0; i < n; i++)
			fn(i);
		return;
	}
	std::lock_guard<std::mutex> rl(run_mu_);
	{
		std::lock_guard<std::mutex> l(mu_);
		if (pool_.empty()) {
			try {
				for (unsigned i = 1; i < threads_; i++)
					pool_.emplace_back(&Copier::worker, this);
			} catch (...) {
				// No threads: the caller copies everything (below).
			}
		}
		fn_ = &fn;
		n_ = n;
		next_ = 0;
		done_ = 0;
		generation_++;
	}
	cv_.notify_all();
	drain(fn, n);
	// Wait for every index and for every worker to leave drain(), so that
	// none touches fn_ after we return.
	std::unique_lock<std::mutex> l(mu_);
	done_cv_.wait(l, [&] { return done_ == n_ && busy_ == 0; });
	fn_ = nullptr;
}

} // namespace bkv
