// SPDX-License-Identifier: Apache-2.0
// The per-host index: an open-addressing table of 64-byte buckets, each with
// seven 8-byte entries (tag << 32 | slot + 1; 0 empty) and a control word
// whose overflow bit sends lookups on to the next bucket.  Lookups take no
// lock: they read a bucket, then the descriptor of each entry whose tag
// matches, and trust a descriptor only if its generation is even and
// unchanged across the read (a seqlock).  Only processes of the owning host
// modify a table, with compare-and-swap on its lines; other hosts read it.
//
// Caches of several hosts (format 2.1) keep a summary beside each index: a
// counting filter of the keys in it (three 4-bit counters in one word per
// key), maintained by the owning host under the single-writer rule.  A
// lookup probes its own index, then only the other hosts whose summary
// holds the key.  Readers keep a private copy of the other hosts'
// summaries and refresh it once per call, invalidating one line per host
// (the generation), then the segment versions and the segments that moved:
// a lookup reads no other host's line for hosts that cannot hold the key.
#include "internal.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace bkv {
namespace {

inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8);
	return v;
}

bool key_equal(View &v, uint64_t off, const uint8_t *key)
{
	for (int i = 0; i < 4; i++)
		if (v.ld(off + 8 * i) != rd64(key + 8 * i))
			return false;
	return true;
}

// Keys are usually SHA-256 already, but callers may pass weaker ones.
inline uint64_t key_h(const uint8_t *key)
{
	uint64_t h = fmix64(rd64(key + 24));
	h = fmix64(rd64(key + 16) ^ h);
	h = fmix64(rd64(key + 8) ^ h);
	return fmix64(rd64(key) ^ h);
}

inline uint64_t entry(uint32_t tag, uint32_t slot) { return uint64_t(tag) << 32 | (slot + 1ull); }

inline bool tag_match(uint64_t val, uint32_t tag, uint64_t slots)
{
	return val != kEntryEmpty && uint32_t(val >> 32) == tag && uint32_t(val) - 1 < slots;
}

// The entries of the bucket at @bucket (this host's view) whose tag field
// is @tag: bit e for entry e.  A hint, read without ordering: every entry it
// names is loaded again and checked (tag_match).
inline unsigned tag_candidates(const uint8_t *bucket, uint32_t tag)
{
#if defined(__SSE2__)
	const __m128i t = _mm_set1_epi32(int(tag));
	unsigned m = 0;
	for (unsigned i = 0; i < 4; i++) {
		__m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(bucket) + i);
		// Lanes 1 and 3: the high halves (tags) of entries 2i and 2i + 1.
		unsigned eq = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(x, t))));
		m |= ((eq >> 1 & 1) | (eq >> 2 & 2)) << 2 * i;
	}
	return m & ((1u << kBucketEntries) - 1); // not the control word
#else
	unsigned m = 0;
	for (unsigned e = 0; e < kBucketEntries; e++) {
		uint64_t val = __atomic_load_n(reinterpret_cast<const uint64_t *>(bucket) + e, __ATOMIC_RELAXED);
		m |= unsigned(uint32_t(val >> 32) == tag) << e;
	}
	return m;
#endif
}

// Empty, or damaged beyond use: no writer stores an entry whose slot is out
// of range, so such an entry (memory damage) may be overwritten; lookups
// already skip it (tag_match).
inline bool free_entry(uint64_t val, uint64_t slots)
{
	return val == kEntryEmpty || uint32_t(val) - 1 >= slots;
}

// Calls @fn(entry offset, value, tag) for each entry of the probe sequence
// from bucket @b in partition @p until it returns true (then returns true).
// @home_fresh: bucket @b of another host was invalidated already, after
// this call began (lookup_window).
template <typename Fn>
bool walk_at(beluga_kvc *kv, uint32_t p, uint64_t b, uint32_t tag, Fn fn, bool home_fresh = false)
{
	View &v = kv->v();
	for (uint64_t probe = 0; probe < kv->g.buckets; probe++, b = b + 1 < kv->g.buckets ? b + 1 : 0) {
		uint64_t off = kv->g.bucket(p, b);
		if (kv->foreign(p) && (probe || !home_fresh))
			v.invalidate(off, kLine, Point::inval_index);
		for (unsigned e = 0; e < kBucketEntries; e++)
			if (fn(off + 8 * e, v.ld(off + 8 * e), tag))
				return true;
		if (!(v.ld(off + kBucketCtl) & kBucketOverflow))
			return false;
	}
	return false;
}

// walk_at for lookups: @fn(value) only for the entries whose tag field is
// @tag (tag_candidates; each loaded again before @fn sees it).  @home: the
// home bucket's tag_candidates() if the caller has them (our own
// partition, read after the call began), else kNoMask.
constexpr unsigned kNoMask = ~0u;
template <typename Fn>
bool walk_tag(beluga_kvc *kv, uint32_t p, uint64_t b, uint32_t tag, Fn fn, bool home_fresh = false,
	      unsigned home = kNoMask)
{
	View &v = kv->v();
	for (uint64_t probe = 0; probe < kv->g.buckets; probe++, b = b + 1 < kv->g.buckets ? b + 1 : 0) {
		uint64_t off = kv->g.bucket(p, b);
		if (kv->foreign(p) && (probe || !home_fresh))
			v.invalidate(off, kLine, Point::inval_index);
		for (unsigned m = probe || home == kNoMask ? tag_candidates(v.ptr(off), tag) : home; m;
		     m &= m - 1)
			if (fn(v.ld(off + 8 * __builtin_ctz(m))))
				return true;
		if (!(v.ld(off + kBucketCtl) & kBucketOverflow))
			return false;
	}
	return false;
}

template <typename Fn> bool walk(beluga_kvc *kv, uint32_t p, const uint8_t *key, Fn fn)
{
	uint64_t b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	return walk_at(kv, p, b, tag, fn);
}

// A key's summary word and its counters (a mask of 1..3 of the 16).
inline void summary_pos_h(uint64_t h, uint64_t words, uint64_t &w, uint16_t &nib)
{
	uint64_t s = fmix64(h ^ 0x2545f4914f6cdd1dull);
	w = uint64_t((unsigned __int128)s * words >> 64);
	nib = uint16_t(1u << (s & 15) | 1u << (s >> 4 & 15) | 1u << (s >> 8 & 15));
}

inline void summary_pos(const uint8_t *key, uint64_t words, uint64_t &w, uint16_t &nib)
{
	summary_pos_h(key_h(key), words, w, nib);
}

// Bit i set when counter i (bits 4i..4i+3) of @c is non-zero.
inline uint16_t nonzero16(uint64_t c)
{
	uint64_t t = c | c >> 1;
	t = (t | t >> 2) & 0x1111111111111111ull;
	t = (t | t >> 3) & 0x0303030303030303ull;
	t = (t | t >> 6) & 0x000f000f000f000full;
	t = (t | t >> 12) & 0x000000ff000000ffull;
	return uint16_t(t | t >> 24);
}

// Count @key in (@d 1) or out of (@d -1) our partition's summary: before
// its index entry is inserted, after it is removed, so that another host
// never skips a partition that holds the key.  A counter at 15 stays (it
// may stand for more keys than it counts); a process killed between the
// two steps leaves a counter one too high, which costs a useless probe,
// never a missed key.
void summary_count(beluga_kvc *kv, const uint8_t *key, int d)
{
	if (!kv->g.summary_off)
		return;
	View &v = kv->v();
	uint64_t w;
	uint16_t nib;
	summary_pos(key, kv->g.summary_words, w, nib);
	uint64_t off = kv->g.summary_word(kv->host, w), c = v.ld(off), n;
	do {
		n = c;
		for (unsigned i = 0; i < 16; i++) {
			uint64_t x = c >> 4 * i & 15;
			if (!(nib >> i & 1) || x == 15 || (d < 0 && !x))
				continue;
			n = d > 0 ? n + (1ull << 4 * i) : n - (1ull << 4 * i);
		}
	} while (n != c && !v.cas(off, c, n));
	if (n == c)
		return;
	// Counters, then their segment's version, then the generation: a
	// reader that sees the generation move re-reads the versions, and one
	// that sees a version move re-reads the segment.
	v.flush(off, 8, Point::summary_flush);
	uint64_t seg = kv->g.summary(kv->host, kSumSegs + 8 * (w / (kv->g.summary_words / kSumSegments)));
	v.add(seg, 1);
	v.flush(seg, 8, Point::summary_seg);
	v.add(kv->g.summary(kv->host, kSumGen), 1);
	v.flush(kv->g.summary(kv->host, kSumGen), 8, Point::summary_gen);
}

// Bring our copy of host @h's summary up to its generation @gen.
void summary_pull(beluga_kvc *kv, uint32_t h, uint64_t gen)
{
	std::lock_guard<std::mutex> l(kv->sum_mu);
	beluga_kvc::SumCopy &sc = *kv->sum;
	if (sc.gen[h].load(std::memory_order_relaxed) == gen)
		return; // another thread of ours did it
	View &v = kv->v();
	uint64_t lines[kSumSegments / 8];
	for (unsigned i = 0; i < kSumSegments / 8; i++)
		lines[i] = kv->g.summary(h, kSumSegs + kLine * i);
	bool foreign = kv->foreign(h); // our own host's lines are coherent for us
	if (foreign)
		v.invalidate_lines(lines, kSumSegments / 8, Point::inval_sum_seg);
	uint64_t per = kv->g.summary_words / kSumSegments, stride = sc.stride;
	for (unsigned s = 0; s < kSumSegments; s++) {
		uint64_t ver = v.ld(kv->g.summary(h, kSumSegs + 8 * s));
		uint64_t &seen = sc.seg[h * kSumSegments + s];
		if (ver == seen)
			continue;
		if (foreign)
			v.invalidate(kv->g.summary_word(h, s * per), 8 * per, Point::inval_summary);
		for (uint64_t w = s * per; w < (s + 1) * per; w++)
			__atomic_store_n(&sc.bits[w * stride + h], nonzero16(v.ld(kv->g.summary_word(h, w))),
					 __ATOMIC_RELAXED);
		seen = ver;
	}
	sc.gen[h].store(gen, std::memory_order_release);
}

// The hosts whose row of our copy (@row: stride entries) has every
// counter of @nib non-zero.
inline uint64_t summary_row_hosts(const uint16_t *row, uint32_t hosts, uint32_t stride, uint16_t nib)
{
	uint64_t mask = 0;
#if defined(__SSE2__)
	if (stride % 8 == 0) { // 8 hosts a compare; padding entries are 0 and never match
		const __m128i want = _mm_set1_epi16(short(nib));
		for (uint32_t h = 0; h < stride; h += 8) {
			__m128i x = _mm_load_si128(reinterpret_cast<const __m128i *>(row + h));
			__m128i eq = _mm_cmpeq_epi16(_mm_and_si128(x, want), want);
			mask |= uint64_t(_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())) & 0xff)
				<< h;
		}
		return mask;
	}
#endif
	for (uint32_t h = 0; h < hosts; h++)
		if ((__atomic_load_n(row + h, __ATOMIC_RELAXED) & nib) == nib)
			mask |= 1ull << h;
	return mask;
}

// The hosts whose summary (our copy) holds the key of hash @h, ours too.
uint64_t summary_hosts_h(beluga_kvc *kv, uint64_t h)
{
	uint64_t w;
	uint16_t nib;
	summary_pos_h(h, kv->g.summary_words, w, nib);
	const beluga_kvc::SumCopy &sc = *kv->sum;
	return summary_row_hosts(sc.bits + w * sc.stride, uint32_t(kv->g.hosts), sc.stride, nib);
}

uint64_t summary_hosts(beluga_kvc *kv, const uint8_t *key) { return summary_hosts_h(kv, key_h(key)); }

// The caller's keys [0, n): read in order, but a sequential prefetcher
// starts only after a few misses.
inline void prefetch_keys(const uint8_t (*keys)[32], size_t n)
{
	for (size_t k = 0; k < n; k += 2)
		__builtin_prefetch(keys[k]);
	if (n && (reinterpret_cast<uintptr_t>(keys[n - 1]) + 31) / kLine !=
			 reinterpret_cast<uintptr_t>(keys[n - 1]) / kLine)
		__builtin_prefetch(keys[n - 1] + 31);
}

inline void bucket_tag(uint64_t h, uint64_t buckets, uint64_t &b, uint32_t &tag)
{
	b = uint64_t((unsigned __int128)h * buckets >> 64);
	tag = uint32_t(fmix64(h ^ 0x5bd1e9955bd1e995ull));
}

void set_overflow(View &v, uint64_t off)
{
	uint64_t c = v.ld(off + kBucketCtl);
	while (!(c & kBucketOverflow) && !v.cas(off + kBucketCtl, c, c | kBucketOverflow)) {
	}
}

} // namespace

void key_hash(const uint8_t key[32], uint64_t buckets, uint64_t &bucket, uint32_t &tag)
{
	bucket_tag(key_h(key), buckets, bucket, tag);
}

bool read_desc(beluga_kvc *kv, uint32_t p, uint32_t slot, const uint8_t *key, Found &f, bool fresh)
{
	View &v = kv->v();
	uint64_t off = kv->g.desc(p, slot);
	if (kv->foreign(p) && !fresh)
		v.invalidate(off, kLine, Point::inval_desc);
	uint64_t g1 = v.ld(off + kDescGen);
	uint64_t own = v.ld(off + kDescOwn);
	if ((g1 & 1) || own_state(own) != kPublished)
		return false;
	if (key && !key_equal(v, off + kDescKey, key))
		return false;
	f.host = p;
	f.slot = slot;
	f.sum = v.ld(off + kDescSum);
	f.len = uint32_t(v.ld(off + kDescLen));
	f.gen = g1;
	return v.ld(off + kDescGen) == g1 && f.len && f.len <= kv->g.payload;
}

bool still_same(beluga_kvc *kv, const Found &f)
{
	// Removed meanwhile is fine: our pin kept the slot from being reused,
	// so an unchanged generation means unchanged bytes.
	View &v = kv->v();
	uint64_t off = kv->g.desc(f.host, f.slot);
	if (kv->foreign(f.host))
		v.invalidate(off, kLine, Point::inval_desc);
	uint64_t g1 = v.ld(off + kDescGen);
	bool same = g1 == f.gen && v.ld(off + kDescSum) == f.sum && uint32_t(v.ld(off + kDescLen)) == f.len;
	return same && v.ld(off + kDescGen) == g1;
}

bool lookup_host(beluga_kvc *kv, uint32_t p, const uint8_t key[32], Found &f)
{
	uint64_t slots = kv->g.slots, b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	return walk_tag(kv, p, b, tag, [&](uint64_t val) {
		return tag_match(val, tag, slots) && read_desc(kv, p, uint32_t(val) - 1, key, f);
	});
}

uint64_t active_hosts(beluga_kvc *kv)
{
	View &v = kv->v();
	uint64_t mask = 0, lines[BELUGA_KVC_MAX_HOSTS];
	uint32_t n = 0;
	for (uint32_t h = 0; h < kv->g.hosts; h++)
		if (kv->foreign(h))
			lines[n++] = kv->g.host(h) + kHostActive;
	v.invalidate_lines(lines, n, Point::none);
	for (uint32_t h = 0; h < kv->g.hosts; h++)
		if (v.ld(kv->g.host(h) + kHostActive) || h == kv->host)
			mask |= 1ull << h;
	return mask;
}

int summary_init(beluga_kvc *kv)
{
	if (!kv->g.summary_off)
		return 0;
	auto sc = std::make_unique<beluga_kvc::SumCopy>();
	sc->stride = uint32_t(kv->g.hosts < 8 ? kv->g.hosts : align_up(kv->g.hosts, 8));
	// Lookups read it at random: from 1 MiB on, aligned to 2 MiB inside
	// the mapping and advised to take transparent huge pages (a hint; 4 KiB
	// pages work too).  Pages are only touched as the copy is filled.
	constexpr size_t kHuge = 2u << 20;
	size_t bytes = align_up(kv->g.summary_words * sc->stride * 2, kPage);
	bool huge = bytes >= kHuge / 2;
	sc->map_len = huge ? align_up(bytes, kHuge) + kHuge : bytes;
	void *m = mmap(nullptr, sc->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	sc->map = m;
	sc->bits = static_cast<uint16_t *>(m);
	if (huge) {
		sc->bits = reinterpret_cast<uint16_t *>(align_up(reinterpret_cast<uintptr_t>(m), kHuge));
		madvise(sc->bits, align_up(bytes, kHuge), MADV_HUGEPAGE);
	}
	sc->seg.assign(kv->g.hosts * kSumSegments, 0);
	kv->sum = std::move(sc);
	return 0;
}

// Our copy of every other host's summary, brought up to the generation
// each one has now.  @invalidated: the generation lines were invalidated
// already (lookup_window does it with its first round's lines).  Returns
// whether any copy changed.
bool summary_sync(beluga_kvc *kv, bool invalidated)
{
	uint64_t lines[BELUGA_KVC_MAX_HOSTS];
	uint32_t n = 0;
	for (uint32_t h = 0; h < kv->g.hosts; h++)
		if (kv->foreign(h))
			lines[n++] = kv->g.summary(h, kSumGen);
	if (!invalidated)
		kv->v().invalidate_lines(lines, n, Point::inval_sum_gen);
	bool changed = false;
	for (uint32_t h = 0; h < kv->g.hosts; h++) {
		// A host that never stored anything has generation 0, as our copy
		// starts.  Ours is read like the others (without invalidating it):
		// a lookup then skips our own index for keys other hosts hold.
		uint64_t gen = kv->v().ld(kv->g.summary(h, kSumGen));
		if (gen != kv->sum->gen[h].load(std::memory_order_acquire)) {
			summary_pull(kv, h, gen);
			changed = true;
		}
	}
	return changed;
}

uint64_t lookup_begin(beluga_kvc *kv, bool deferred)
{
	if (kv->g.hosts == 1)
		return 1;
	if (!kv->g.summary_off)
		return active_hosts(kv);
	if (!deferred)
		summary_sync(kv, false);
	return ~0ull;
}

bool lookup_any(beluga_kvc *kv, const uint8_t key[32], Found &f, uint64_t hosts)
{
	uint64_t own = 1ull << kv->host, mask;
	if (kv->g.summary_off) { // ours too only if our summary holds the key
		mask = (hosts ? hosts : lookup_begin(kv, false)) & summary_hosts(kv, key);
		if ((mask & own) && lookup_host(kv, kv->host, key, f))
			return true;
	} else {
		if (lookup_host(kv, kv->host, key, f))
			return true;
		if (kv->g.hosts == 1)
			return false;
		mask = hosts ? hosts : lookup_begin(kv, false);
	}
	mask &= ~own;
	for (uint32_t h = 0; mask; h++, mask >>= 1)
		if ((mask & 1) && lookup_host(kv, h, key, f))
			return true;
	return false;
}

void lookup_window(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, uint64_t hosts, Pre *pre,
		   bool first)
{
	View &v = kv->v();
	uint64_t lines[kWindowLines + BELUGA_KVC_MAX_HOSTS];
	lines[0] = 0; // (the compiler cannot tell that nothing is read when none is set)
	size_t nl = 0;
	// The first window of a call also invalidates the other hosts'
	// summary generations, with the same fence: the candidates below come
	// from our copy as it was, and are recomputed if a generation moved.
	bool sync = first && kv->sum;
	if (sync)
		for (uint32_t h = 0; h < kv->g.hosts; h++)
			if (kv->foreign(h))
				lines[nl++] = kv->g.summary(h, kSumGen);
	size_t gens = nl;
	// Invalidations are issued as early as their lines are known, without
	// a fence each, so that most have completed when the one fence below
	// waits for them.
	v.invalidate_lines(lines, gens, Point::inval_sum_gen, false);
	prefetch_keys(keys, n);
	// Round 1: home buckets.  The other hosts' that may hold a key are
	// invalidated (one fence for all), then prefetched; ours are prefetched
	// after the fence.  Each key is hashed, and its row of the summary copy
	// prefetched, kRowAhead keys before its candidates are read, so that
	// the work stops soon after the first key no summary holds.
	constexpr size_t kRowAhead = 8;
	auto hash_key = [&](size_t k) {
		Pre &p = pre[k];
		p.h = key_h(keys[k]);
		bucket_tag(p.h, kv->g.buckets, p.b, p.tag);
		if (kv->sum) {
			uint64_t w;
			uint16_t nib;
			summary_pos_h(p.h, kv->g.summary_words, w, nib);
			__builtin_prefetch(kv->sum->bits + w * kv->sum->stride);
		} else {
			__builtin_prefetch(v.ptr(kv->g.bucket(kv->host, p.b)));
		}
	};
	size_t hashed = 0;
	for (; hashed < n && hashed < kRowAhead; hashed++)
		hash_key(hashed);
	const size_t all = n;
	for (size_t k = 0; k < n; k++) {
		if (hashed < n)
			hash_key(hashed++);
		Pre &p = pre[k];
		p.cand = hosts;
		if (kv->sum)
			p.cand &= summary_hosts_h(kv, p.h);
		p.fresh = 0;
		p.nd = 0;
		for (uint64_t m = p.cand & ~(1ull << kv->host); m && nl < kWindowLines + gens;
		     m &= m - 1) {
			lines[nl] = kv->g.bucket(__builtin_ctzll(m), p.b);
			__builtin_prefetch(v.ptr(lines[nl++]));
			p.fresh |= m & -m;
		}
		// No summary holds this key: the prefix ends here (unless a
		// generation moved, below), so the keys after it need nothing.
		if (!p.cand) {
			n = k + 1;
			break;
		}
	}
	// Guess the descriptors from the buckets as we have them (perhaps
	// stale: a guess only decides what to invalidate early), so that the
	// descriptors usually share the buckets' fence.
	auto add_descs = [&](Pre &p, uint32_t h) {
		uint64_t off = kv->g.bucket(h, p.b);
		for (unsigned m = tag_candidates(v.ptr(off), p.tag); m; m &= m - 1) {
			uint64_t val = v.ld(off + 8 * __builtin_ctz(m));
			if (!tag_match(val, p.tag, kv->g.slots))
				continue;
			uint32_t slot = uint32_t(val) - 1;
			bool known = false;
			for (uint32_t i = 0; i < p.nd; i++)
				known |= p.dh[i] == h && p.ds[i] == slot;
			if (known || p.nd >= kPreDescs || nl >= kWindowLines + BELUGA_KVC_MAX_HOSTS)
				continue;
			p.dh[p.nd] = h;
			p.ds[p.nd++] = slot;
			lines[nl++] = kv->g.desc(h, slot);
		}
	};
	// Each bucket is invalidated once its guesses are read, with them.
	for (size_t k = 0, j = gens; k < n; k++)
		for (uint64_t m = pre[k].fresh; m; m &= m - 1, j++) {
			size_t first = nl;
			add_descs(pre[k], uint32_t(__builtin_ctzll(m)));
			v.invalidate_lines(lines + j, 1, Point::inval_index, false);
			v.invalidate_lines(lines + first, nl - first, Point::inval_desc, false);
		}
	// Generations, buckets and guessed descriptors: one fence.
	if (nl)
		v.fence();
	// Prefetches in flight make the fence wait for them too: our own
	// buckets only now.  The generations first: they are read first.
	for (size_t i = 0; i < nl; i++)
		__builtin_prefetch(v.ptr(lines[i]));
	if (kv->sum)
		for (size_t k = 0; k < n; k++)
			if (pre[k].cand >> kv->host & 1)
				__builtin_prefetch(v.ptr(kv->g.bucket(kv->host, pre[k].b)));
	if (sync && summary_sync(kv, true))
		for (size_t k = 0; k < all; k++) { // lookup_pre invalidates what is not fresh
			if (k >= hashed)
				hash_key(k);
			pre[k].cand = hosts & summary_hosts_h(kv, pre[k].h);
			if (k >= n)
				pre[k].fresh = pre[k].nd = 0;
		}
	// Round 2: the descriptors the (now fresh) buckets name for the keys'
	// tags: ours prefetched, other hosts' that were not guessed invalidated
	// (a second fence only when a guess missed).
	nl = 0;
	for (size_t k = 0; k < n; k++) {
		Pre &p = pre[k];
		if (p.cand >> kv->host & 1) {
			uint64_t off = kv->g.bucket(kv->host, p.b);
			for (unsigned m = tag_candidates(v.ptr(off), p.tag); m; m &= m - 1) {
				uint64_t val = v.ld(off + 8 * __builtin_ctz(m));
				if (tag_match(val, p.tag, kv->g.slots))
					__builtin_prefetch(v.ptr(kv->g.desc(kv->host, uint32_t(val) - 1)));
			}
		}
		for (uint64_t m = p.fresh; m; m &= m - 1)
			add_descs(p, uint32_t(__builtin_ctzll(m)));
	}
	if (nl) {
		v.invalidate_lines(lines, nl, Point::inval_desc);
		for (size_t i = 0; i < nl; i++)
			__builtin_prefetch(v.ptr(lines[i]));
	}
}

bool lookup_pre(beluga_kvc *kv, const uint8_t key[32], const Pre &p, Found &f)
{
	uint64_t slots = kv->g.slots;
	auto probe = [&](uint32_t h) {
		return walk_tag(kv, h, p.b, p.tag, [&](uint64_t val) {
			if (!tag_match(val, p.tag, slots))
				return false;
			uint32_t slot = uint32_t(val) - 1;
			bool fresh = false;
			for (uint32_t i = 0; i < p.nd; i++)
				fresh |= p.dh[i] == h && p.ds[i] == slot;
			return read_desc(kv, h, slot, key, f, fresh);
		}, p.fresh >> h & 1);
	};
	if ((p.cand >> kv->host & 1) && probe(kv->host))
		return true;
	for (uint64_t m = p.cand & ~(1ull << kv->host); m; m &= m - 1)
		if (probe(uint32_t(__builtin_ctzll(m))))
			return true;
	return false;
}

int index_insert(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	uint64_t b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	uint64_t mine = entry(tag, slot), at = 0;
	summary_count(kv, key, 1); // before the entry: other hosts must not skip us
	for (uint64_t probe = 0; probe < kv->g.buckets && !at; probe++) {
		uint64_t off = kv->g.bucket(kv->host, (b + probe) % kv->g.buckets);
		for (unsigned e = 0; e < kBucketEntries && !at; e++) {
			uint64_t val = v.ld(off + 8 * e);
			if (free_entry(val, kv->g.slots) && v.cas(off + 8 * e, val, mine))
				at = off + 8 * e;
		}
		if (!at) { // full: keys homed here may now live further on
			if (v.ld(off + kBucketCtl) & kBucketOverflow)
				continue;
			set_overflow(v, off);
		}
		v.flush(off, kLine, Point::index_publish);
	}
	if (!at) {
		summary_count(kv, key, -1);
		return -ENOSPC;
	}
	// Two processes of this host may have stored the same key at once: the
	// copy that sits later in the probe sequence withdraws.
	bool dup = false;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t) {
		if (off == at)
			return true;
		Found f;
		dup = tag_match(val, tag, kv->g.slots) && uint32_t(val) - 1 != slot &&
		      read_desc(kv, kv->host, uint32_t(val) - 1, key, f);
		return dup;
	});
	if (!dup)
		return 0;
	uint64_t expect = mine;
	if (v.cas(at, expect, kEntryEmpty)) {
		v.flush(at / kLine * kLine, kLine, Point::index_publish);
		summary_count(kv, key, -1);
	}
	return BELUGA_KVC_EXISTS;
}

int index_remove(beluga_kvc *kv, const uint8_t key[32], uint32_t resv_idx)
{
	View &v = kv->v();
	int n = 0;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		Found f;
		uint32_t slot = uint32_t(val) - 1;
		if (!tag_match(val, tag, kv->g.slots) || !read_desc(kv, kv->host, slot, key, f))
			return false;
		// Own the slot first (recorded in our reservation log), so that a
		// kill between dropping the entry and retiring the slot leaves a
		// slot our successor can settle or retire.
		if (!slot_take(kv, slot, resv_idx))
			return false; // being published right now by another process
		uint64_t expect = val;
		if (v.cas(off, expect, kEntryEmpty)) {
			v.flush(off / kLine * kLine, kLine, Point::index_publish);
			summary_count(kv, key, -1);
			n++;
			hook(kHookRemoving, 1);
		}
		slot_retire(kv, slot);
		v.st32(kv->g.resv(kv->host, kv->session, resv_idx), 0);
		return false;
	});
	return n;
}

size_t lookup_prefix_own(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n)
{
	// Three stages, each a fixed number of keys ahead of the comparison:
	// hash the key and prefetch its home bucket (kBucketAhead), read the
	// bucket and prefetch the descriptors it names for the key's tag
	// (kDescAhead), compare.  The keys' misses overlap, and a miss stops
	// the work at most kBucketAhead keys later.
	constexpr size_t kBucketAhead = 16, kDescAhead = 8, kRing = 32;
	static_assert(kRing >= kBucketAhead && (kRing & (kRing - 1)) == 0);
	struct Ahead {
		uint64_t b;
		uint32_t tag;
		unsigned home; // the home bucket's tag_candidates()
	} ring[kRing];
	View &v = kv->v();
	const uint64_t slots = kv->g.slots;
	auto hash_ahead = [&](size_t j) {
		Ahead &a = ring[j % kRing];
		if (j + kRing < n && (j + kRing) % 2 == 0) // the caller's keys: two a line
			__builtin_prefetch(keys[j + kRing]);
		bucket_tag(key_h(keys[j]), kv->g.buckets, a.b, a.tag);
		__builtin_prefetch(v.ptr(kv->g.bucket(kv->host, a.b)));
	};
	auto descs_ahead = [&](size_t j) {
		Ahead &a = ring[j % kRing];
		uint64_t off = kv->g.bucket(kv->host, a.b);
		a.home = tag_candidates(v.ptr(off), a.tag);
		for (unsigned m = a.home; m; m &= m - 1) {
			uint64_t val = v.ld(off + 8 * __builtin_ctz(m));
			if (tag_match(val, a.tag, slots))
				__builtin_prefetch(v.ptr(kv->g.desc(kv->host, uint32_t(val) - 1)));
		}
	};
	auto find = [&](const Ahead &a, const uint8_t *key) {
		Found f;
		return walk_tag(kv, kv->host, a.b, a.tag, [&](uint64_t val) {
			return tag_match(val, a.tag, slots) &&
			       read_desc(kv, kv->host, uint32_t(val) - 1, key, f);
		}, false, a.home);
	};
	size_t hashed = 0, described = 0, i = 0;
	prefetch_keys(keys, std::min(n, kRing));
	for (; hashed < n && hashed < kBucketAhead; hashed++)
		hash_ahead(hashed);
	for (; described < n && described < kDescAhead; described++)
		descs_ahead(described);
	for (; i < n; i++) {
		if (hashed < n)
			hash_ahead(hashed++);
		if (described < n)
			descs_ahead(described++);
		if (!find(ring[i % kRing], keys[i]))
			break;
	}
	return i;
}

void index_drop(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	uint64_t want = slot + 1ull;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		if (val == kEntryEmpty || uint32_t(val >> 32) != tag || (val & 0xffffffff) != want)
			return false;
		if (v.cas(off, val, kEntryEmpty)) {
			v.flush(off / kLine * kLine, kLine, Point::index_publish);
			summary_count(kv, key, -1);
		}
		return true;
	});
}

bool index_points_to(beluga_kvc *kv, uint32_t p, const uint8_t key[32], uint32_t slot)
{
	uint64_t want = slot + 1ull;
	return walk(kv, p, key, [&](uint64_t, uint64_t val, uint32_t tag) {
		return val != kEntryEmpty && uint32_t(val >> 32) == tag && (val & 0xffffffff) == want;
	});
}

} // namespace bkv

beluga_kvc::SumCopy::~SumCopy()
{
	if (map)
		munmap(map, map_len);
}
