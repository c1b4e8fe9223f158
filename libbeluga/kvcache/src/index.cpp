// SPDX-License-Identifier: Apache-2.0
// The per-host index: an open-addressing table of 64-byte buckets, each with
// five 8-byte entries (tag << 32 | slot + 1; 0 empty), their 32-bit check
// words and a control word whose overflow bit sends lookups on to the next
// bucket.  A key's 64-bit index hash gives its home bucket and, split in
// two, its tag and check.  Prefix lookups answer from the buckets alone: an
// entry whose tag and check match is the key's (a block another key shares
// all 64 bits with is reported too, once in 2^64 probes; gets compare the
// whole key).  Everything else (get, pin, put's existence test, removal)
// reads the descriptor of each entry whose tag matches and trusts it only if
// its generation is even and unchanged across the read (a seqlock).  No
// lock is taken: only processes of the owning host modify a table, with
// compare-and-swap on its words; other hosts read it.
//
// Caches of several hosts keep a summary beside each index: a
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

inline uint64_t check_off(uint64_t bucket, unsigned e) { return bucket + kBucketCheck + 4 * e; }

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
	for (unsigned i = 0; i < (kBucketEntries + 1) / 2; i++) {
		__m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(bucket) + i);
		// Lanes 1 and 3: the high halves (tags) of entries 2i and 2i + 1.
		unsigned eq = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(x, t))));
		m |= ((eq >> 1 & 1) | (eq >> 2 & 2)) << 2 * i;
	}
	return m & ((1u << kBucketEntries) - 1); // not the check words
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

// Calls @fn(bucket offset) for each bucket of the probe sequence from bucket
// @b in partition @p (another host's invalidated first) until it returns
// true (then returns true) or a bucket without the overflow bit was seen.
// @home_fresh: bucket @b of another host was invalidated already, after
// this call began (lookup_prefix_hosts).
template <typename Fn> bool probe_seq(beluga_kvc *kv, uint32_t p, uint64_t b, bool home_fresh, Fn fn)
{
	View &v = kv->v();
	for (uint64_t probe = 0; probe < kv->g.buckets; probe++, b = b + 1 < kv->g.buckets ? b + 1 : 0) {
		uint64_t off = kv->g.bucket(p, b);
		if (kv->foreign(p) && (probe || !home_fresh))
			v.invalidate(off, kLine, Point::inval_index);
		if (fn(off))
			return true;
		if (!(v.ld32(off + kBucketCtl) & kBucketOverflow))
			return false;
	}
	return false;
}

// Calls @fn(entry offset, value, tag) for each entry of the probe sequence
// from bucket @b in partition @p until it returns true (then returns true).
template <typename Fn> bool walk_at(beluga_kvc *kv, uint32_t p, uint64_t b, uint32_t tag, Fn fn)
{
	View &v = kv->v();
	return probe_seq(kv, p, b, false, [&](uint64_t off) {
		for (unsigned e = 0; e < kBucketEntries; e++)
			if (fn(off + 8 * e, v.ld(off + 8 * e), tag))
				return true;
		return false;
	});
}

// walk_at for lookups: @fn(value) only for the entries whose tag field is
// @tag (tag_candidates; each loaded again before @fn sees it).
template <typename Fn> bool walk_tag(beluga_kvc *kv, uint32_t p, uint64_t b, uint32_t tag, Fn fn)
{
	View &v = kv->v();
	return probe_seq(kv, p, b, false, [&](uint64_t off) {
		for (unsigned m = tag_candidates(v.ptr(off), tag); m; m &= m - 1)
			if (fn(v.ld(off + 8 * __builtin_ctz(m))))
				return true;
		return false;
	});
}

template <typename Fn> bool walk(beluga_kvc *kv, uint32_t p, const uint8_t *key, Fn fn)
{
	KeyPos k = key_pos(key, kv->g.buckets);
	return walk_at(kv, p, k.b, k.tag, fn);
}

// Whether the probe sequence of a key from bucket @b of partition @p has an
// entry with its tag and check word: the prefix lookups' answer, from the
// buckets alone.  @home_fresh: as for probe_seq.  (probe_seq's loop written
// out: the one-host pipeline ran about 20 % slower through the lambda.)
bool index_has(beluga_kvc *kv, uint32_t p, uint64_t b, uint32_t tag, uint32_t check,
	       bool home_fresh = false)
{
	View &v = kv->v();
	for (uint64_t probe = 0; probe < kv->g.buckets; probe++, b = b + 1 < kv->g.buckets ? b + 1 : 0) {
		uint64_t off = kv->g.bucket(p, b);
		if (kv->foreign(p) && (probe || !home_fresh))
			v.invalidate(off, kLine, Point::inval_index);
		for (unsigned m = tag_candidates(v.ptr(off), tag); m; m &= m - 1) {
			unsigned e = unsigned(__builtin_ctz(m));
			if (tag_match(v.ld(off + 8 * e), tag, kv->g.slots) &&
			    v.ld32(check_off(off, e)) == check)
				return true;
		}
		if (!(v.ld32(off + kBucketCtl) & kBucketOverflow))
			return false;
	}
	return false;
}

// A key's home bucket, tag and check (format.hpp, "Index"): the home
// bucket from the index hash's high bits; tag and check are the two halves
// of a bijection of it, so together they match only keys of the same
// 64-bit hash.
inline KeyPos pos_of(uint64_t h, uint64_t buckets)
{
	uint64_t t = fmix64(h ^ 0x5bd1e9955bd1e995ull);
	return {uint64_t((unsigned __int128)h * buckets >> 64), uint32_t(t), uint32_t(t >> 32)};
}

// A key's summary word (from the high bits of check << 32 | tag) and its
// counters (a mask of 1..3 of the 16, from the tag's low 12 bits).
inline void summary_pos(const KeyPos &k, uint64_t words, uint64_t &w, uint16_t &nib)
{
	uint64_t t = uint64_t(k.check) << 32 | k.tag;
	w = uint64_t((unsigned __int128)t * words >> 64);
	nib = uint16_t(1u << (t & 15) | 1u << (t >> 4 & 15) | 1u << (t >> 8 & 15));
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
	summary_pos(pos_of(key_h(key), kv->g.buckets), kv->g.summary_words, w, nib);
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

// The hosts whose summary (our copy) holds @key, ours too.
uint64_t summary_hosts(beluga_kvc *kv, const uint8_t *key)
{
	uint64_t w;
	uint16_t nib;
	summary_pos(pos_of(key_h(key), kv->g.buckets), kv->g.summary_words, w, nib);
	const beluga_kvc::SumCopy &sc = *kv->sum;
	return summary_row_hosts(sc.bits + w * sc.stride, uint32_t(kv->g.hosts), sc.stride, nib);
}

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

void set_overflow(View &v, uint64_t off)
{
	uint32_t c = v.ld32(off + kBucketCtl);
	while (!(c & kBucketOverflow) && !v.cas32(off + kBucketCtl, c, c | kBucketOverflow)) {
	}
}

} // namespace

KeyPos key_pos(const uint8_t key[32], uint64_t buckets) { return pos_of(key_h(key), buckets); }

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
	uint64_t slots = kv->g.slots;
	KeyPos k = key_pos(key, kv->g.buckets);
	return walk_tag(kv, p, k.b, k.tag, [&](uint64_t val) {
		return tag_match(val, k.tag, slots) && read_desc(kv, p, uint32_t(val) - 1, key, f);
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
// already (lookup_prefix_hosts does it under its first window's fence).  Returns
// whether any copy changed.
bool summary_sync(beluga_kvc *kv, bool invalidated)
{
	if (!invalidated) {
		uint64_t lines[BELUGA_KVC_MAX_HOSTS];
		uint32_t n = 0;
		for (uint32_t h = 0; h < kv->g.hosts; h++)
			if (kv->foreign(h))
				lines[n++] = kv->g.summary(h, kSumGen);
		kv->v().invalidate_lines(lines, n, Point::inval_sum_gen);
	}
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

namespace {

// Before the lookups of one call: the hosts to pass to lookup_any, after
// bringing this handle's copy of the summaries up to date.
uint64_t lookup_begin(beluga_kvc *kv)
{
	if (!kv->sum)
		return 1; // one host
	summary_sync(kv, false);
	return ~0ull;
}

} // namespace

bool lookup_any(beluga_kvc *kv, const uint8_t key[32], Found &f, uint64_t hosts)
{
	if (!kv->sum) // one host
		return lookup_host(kv, kv->host, key, f);
	// Ours too only if our summary holds the key.
	uint64_t own = 1ull << kv->host;
	uint64_t mask = (hosts ? hosts : lookup_begin(kv)) & summary_hosts(kv, key);
	if ((mask & own) && lookup_host(kv, kv->host, key, f))
		return true;
	mask &= ~own;
	for (uint32_t h = 0; mask; h++, mask >>= 1)
		if ((mask & 1) && lookup_host(kv, h, key, f))
			return true;
	return false;
}

namespace {

// A window of a prefix lookup of several hosts: kWindow keys at most, and
// what it keeps for each key.
constexpr size_t kWindow = 32;
constexpr size_t kWindowLines = 256; // other hosts' lines invalidated per window
struct Pre {
	KeyPos pos;
	uint64_t cand, fresh; // hosts to probe; hosts whose home bucket is fresh
	const uint16_t *row;  // the key's row of our summary copy
	uint16_t nib;	      // and its counters
};

// Bring the home buckets of the hosts @p names into our cache (ours among
// them), kFetchAhead keys before they are compared: issued all at once
// after the fence, the prefetches of a window wait for one another (about
// 7 % slower, measured on the 8-host benchmark).
constexpr size_t kFetchAhead = 12;
inline void fetch_buckets(beluga_kvc *kv, const Pre &p)
{
	for (uint64_t c = p.cand; c; c &= c - 1)
		__builtin_prefetch(kv->v().ptr(kv->g.bucket(__builtin_ctzll(c), p.pos.b)));
}

// A window of a prefix lookup in a cache of several hosts: prepares up to
// @n keys in @pre and returns how many; the last one prepared may be a key
// no summary holds (the prefix ends there, unless our summary copy was
// stale).  @first: the call's first window, which also invalidates the
// other hosts' summary generations for lookup_prefix_hosts to read.
size_t lookup_window(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, uint64_t hosts, Pre *pre,
		     bool first)
{
	View &v = kv->v();
	uint64_t lines[kWindowLines + BELUGA_KVC_MAX_HOSTS];
	lines[0] = 0; // (the compiler cannot tell that nothing is read when none is set)
	size_t nl = 0;
	// The first window of a call also invalidates the other hosts'
	// summary generations, with the same fence: the candidates below come
	// from our copy as it was; lookup_prefix_hosts reads the generations
	// once a key misses, and looks again if one moved.
	if (first)
		for (uint32_t h = 0; h < kv->g.hosts; h++)
			if (kv->foreign(h))
				lines[nl++] = kv->g.summary(h, kSumGen);
	// Invalidations are issued as early as their lines are known, without
	// a fence each, so that most have completed when the one fence below
	// waits for them; nothing of the other hosts' is prefetched before it
	// (a prefetch in flight makes the fence wait too, and the line it
	// brings is dropped).
	v.invalidate_lines(lines, nl, Point::inval_sum_gen, false);
	size_t gens = nl;
	prefetch_keys(keys, n);
	// Each key is hashed, and its row of the summary copy prefetched,
	// kRowAhead keys before its candidate hosts are read, so that the work
	// stops soon after the first key no summary holds.
	constexpr size_t kRowAhead = 8;
	auto hash_key = [&](size_t k) {
		Pre &p = pre[k];
		p.pos = pos_of(key_h(keys[k]), kv->g.buckets);
		uint64_t w;
		summary_pos(p.pos, kv->g.summary_words, w, p.nib);
		p.row = kv->sum->bits + w * kv->sum->stride;
		__builtin_prefetch(p.row);
	};
	size_t hashed = 0;
	for (; hashed < n && hashed < kRowAhead; hashed++)
		hash_key(hashed);
	for (size_t k = 0; k < n; k++) {
		if (hashed < n)
			hash_key(hashed++);
		Pre &p = pre[k];
		p.cand = hosts & summary_row_hosts(p.row, uint32_t(kv->g.hosts), kv->sum->stride, p.nib);
		p.fresh = 0;
		size_t first_line = nl;
		for (uint64_t m = p.cand & ~(1ull << kv->host); m && nl < kWindowLines + gens;
		     m &= m - 1) {
			lines[nl++] = kv->g.bucket(__builtin_ctzll(m), p.pos.b);
			p.fresh |= m & -m;
		}
		v.invalidate_lines(lines + first_line, nl - first_line, Point::inval_index, false);
		// No summary holds this key: the prefix ends here (unless a
		// generation moved), so the keys after it need nothing.
		if (!p.cand) {
			n = k + 1;
			break;
		}
	}
	// Generations and home buckets: one fence (coherent memory needs none).
	if (nl && v.mode() != View::coherent)
		v.fence();
	// The generations (few, and read once a key misses), then the buckets
	// of the first keys (lookup_prefix_hosts fetches the others ahead of
	// their comparison).
	for (size_t i = 0; i < gens; i++)
		__builtin_prefetch(v.ptr(lines[i]));
	for (size_t k = 0; k < n && k < kFetchAhead; k++)
		fetch_buckets(kv, pre[k]);
	return n;
}

// Whether the key @p prepared is cached (its fresh home buckets are not
// invalidated again).
bool lookup_pre(beluga_kvc *kv, const Pre &p)
{
	if ((p.cand >> kv->host & 1) && index_has(kv, kv->host, p.pos.b, p.pos.tag, p.pos.check))
		return true;
	for (uint64_t m = p.cand & ~(1ull << kv->host); m; m &= m - 1) {
		uint32_t h = uint32_t(__builtin_ctzll(m));
		if (index_has(kv, h, p.pos.b, p.pos.tag, p.pos.check, p.fresh >> h & 1))
			return true;
	}
	return false;
}

} // namespace

size_t lookup_prefix_hosts(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n)
{
	Pre pre[kWindow];
	size_t i = 0;
	bool synced = false;
	while (i < n) {
		size_t w = std::min(kWindow, n - i);
		size_t m = lookup_window(kv, keys + i, w, ~0ull, pre, i == 0 && !synced);
		size_t k = 0;
		for (; k < m; k++) {
			if (k + kFetchAhead < m)
				fetch_buckets(kv, pre[k + kFetchAhead]);
			if (!lookup_pre(kv, pre[k]))
				break;
		}
		i += k;
		if (k == w)
			continue;
		// A miss: final only if our summary copy was current.  The first
		// window invalidated the generations (and fetched them while the
		// buckets were compared); if one moved, our copy is brought up
		// to date and the lookup goes on from the missing key.
		if (synced || !summary_sync(kv, true))
			break;
		synced = true;
	}
	return i;
}

int index_insert(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	KeyPos k = key_pos(key, kv->g.buckets);
	const uint32_t tag = k.tag;
	uint64_t mine = entry(tag, slot), at = 0;
	summary_count(kv, key, 1); // before the entry: other hosts must not skip us
	for (uint64_t probe = 0; probe < kv->g.buckets && !at; probe++) {
		uint64_t off = kv->g.bucket(kv->host, (k.b + probe) % kv->g.buckets);
		for (unsigned e = 0; e < kBucketEntries && !at; e++) {
			uint64_t val = v.ld(off + 8 * e);
			if (free_entry(val, kv->g.slots) && v.cas(off + 8 * e, val, mine)) {
				// The entry is ours: its check word too.  Until it is
				// written (or if we die first: slot_reclaim writes it),
				// lookups miss the key; nothing else reads it.
				at = off + 8 * e;
				hook(kHookIndexed, 1);
				v.st32(check_off(off, e), k.check);
			}
		}
		if (!at) { // full: keys homed here may now live further on
			if (v.ld32(off + kBucketCtl) & kBucketOverflow)
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
	uint64_t gone = kEntryEmpty; // the entry removed, to drop copies of it (damage)
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		if (gone != kEntryEmpty && val == gone) {
			uint64_t expect = val;
			if (v.cas(off, expect, kEntryEmpty))
				v.flush(off / kLine * kLine, kLine, Point::index_publish);
			return false;
		}
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
			gone = val;
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
	// Two stages, each a fixed number of keys ahead of the comparison:
	// hash the key and prefetch its home bucket (kAhead keys ahead), then
	// compare its tag and check with the bucket's.  The keys' misses
	// overlap, and a miss stops the work at most kAhead keys later.
	constexpr size_t kAhead = 16, kRing = 32;
	static_assert(kRing >= kAhead && (kRing & (kRing - 1)) == 0);
	KeyPos ring[kRing];
	const uint64_t buckets = kv->g.buckets;
	auto hash_ahead = [&](size_t j) {
		if (j + kRing < n && (j + kRing) % 2 == 0) // the caller's keys: two a line
			__builtin_prefetch(keys[j + kRing]);
		ring[j % kRing] = pos_of(key_h(keys[j]), buckets);
		__builtin_prefetch(kv->v().ptr(kv->g.bucket(kv->host, ring[j % kRing].b)));
	};
	size_t hashed = 0, i = 0;
	prefetch_keys(keys, std::min(n, kRing));
	for (; hashed < n && hashed < kAhead; hashed++)
		hash_ahead(hashed);
	for (; i < n; i++) {
		if (hashed < n)
			hash_ahead(hashed++);
		const KeyPos &k = ring[i % kRing];
		if (!index_has(kv, kv->host, k.b, k.tag, k.check))
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

bool index_adopt(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	KeyPos k = key_pos(key, kv->g.buckets);
	uint64_t want = slot + 1ull;
	return walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		if (val == kEntryEmpty || uint32_t(val >> 32) != tag || (val & 0xffffffff) != want)
			return false;
		uint64_t line = off / kLine * kLine, c = check_off(line, unsigned(off - line) / 8);
		if (v.ld32(c) != k.check) {
			v.st32(c, k.check);
			v.flush(line, kLine, Point::index_publish);
		}
		return true;
	});
}

} // namespace bkv

beluga_kvc::SumCopy::~SumCopy()
{
	if (map)
		munmap(map, map_len);
}
