// SPDX-License-Identifier: Apache-2.0
// Description: PNG plots through gnuplot (Debian: gnuplot-nox) - latency and
// bandwidth against size, one line per memory (and per operation), plus the
// O4 copy-time curves.  The data and the gnuplot script are left next to the
// PNGs so a plot can be restyled without rerunning the bench.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "bench.hpp"

namespace bench {

namespace {

struct Series {
	std::string title;
	std::size_t mem = 0;	// dash type: one per memory
	std::string what;	// colour: one per operation (same across memories)
	std::vector<std::pair<std::uint64_t, double>> xy;
};

// Groups the points of @s into lines: memory x op/method x threads.
std::vector<Series> series_of(const Report &r, const Section &s)
{
	std::map<std::string, Series> by;
	std::vector<std::string> order;

	for (const auto &p : s.points) {
		if (!p.skipped.empty())
			continue;
		for (std::size_t m = 0; m < r.memories.size(); m++) {
			std::string what;

			if (s.name != "latency")
				what = s.name == "crossover" ? p.method : p.op;
			if (p.threads > 1)
				what += " x" + std::to_string(p.threads);
			std::string t = r.memories[m] + (what.empty() ? "" : " " + what);
			if (!by.count(t))
				order.push_back(t);
			by[t].title = t;
			by[t].mem = m;
			by[t].what = what.empty() ? r.memories[m] : what;	// colour per memory
			if (!std::isnan(p.value[m]))
				by[t].xy.emplace_back(p.size, p.value[m]);
		}
	}
	std::vector<Series> v;
	for (const auto &t : order)
		v.push_back(by[t]);
	return v;
}

std::string quote(const std::string &s)
{
	return "'" + s + "'";	// paths come from the user: reject quotes up front
}

void write_plot(const Report &r, const Section &s, const std::string &dir,
		const std::string &ylabel, bool logy, std::ofstream &script)
{
	auto lines = series_of(r, s);
	std::string dat = dir + "/" + s.name + ".dat";
	std::ofstream d(dat);

	for (const auto &l : lines) {
		d << "# " << l.title << "\n";
		for (const auto &[x, y] : l.xy)
			d << x << " " << y << "\n";
		d << "\n\n";	// gnuplot: next index
	}
	script << "set output " << quote(dir + "/" + s.name + ".png") << "\n"
	       << "set title " << quote(s.title) << "\n"
	       << "set ylabel " << quote(ylabel) << "\n"
	       << (logy ? "set logscale y\n" : "unset logscale y\n") << "plot ";
	std::vector<std::string> colours;	// one colour per operation
	for (std::size_t i = 0; i < lines.size(); i++) {
		auto c = std::find(colours.begin(), colours.end(), lines[i].what);

		if (c == colours.end())
			c = colours.insert(colours.end(), lines[i].what);
		script << (i ? ", " : "") << quote(dat) << " index " << i
		       << " using 1:2 with linespoints lw 2 dt " << lines[i].mem + 1 << " lc "
		       << (c - colours.begin()) + 1 << " title " << quote(lines[i].title);
	}
	script << "\n";
}

void run_gnuplot(const std::string &script)
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		throw std::runtime_error("gnuplot failed on " + script + " (exit status " +
					 std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) +
					 ")");
}

} // namespace

bool have_gnuplot()
{
	const char *path = std::getenv("PATH");
	std::stringstream dirs(path ? path : "/usr/bin:/bin");

	for (std::string d; std::getline(dirs, d, ':');)
		if (!d.empty() && access((d + "/gnuplot").c_str(), X_OK) == 0)
			return true;
	return false;
}

std::vector<std::string> write_plots(const Report &r, const std::string &dir)
{
	static const std::map<std::string, std::pair<std::string, bool>> kinds = {
		{ "latency", { "ns per load", true } },
		{ "bandwidth", { "GB/s", false } },
		{ "crossover", { "us per copy", true } },
	};
	std::string file = dir + "/plots.gp";
	std::vector<std::string> pngs;

	if (dir.find('\'') != std::string::npos)
		throw std::runtime_error("--plot: the directory name must not contain a quote");
	if (mkdir(dir.c_str(), 0777) && errno != EEXIST)
		throw std::runtime_error("--plot " + dir + ": " + std::strerror(errno));
	{
		std::ofstream script(file);

		script << "set terminal pngcairo size 1000,640\n"
		       << "set logscale x 2\nset format x '%.0b%B'\nset xlabel 'size (bytes)'\n"
		       << "set grid\nset key outside right\n";
		for (const auto &s : r.sections) {
			auto k = kinds.find(s.name);

			if (k == kinds.end() || s.points.empty())
				continue;
			write_plot(r, s, dir, k->second.first, k->second.second, script);
			pngs.push_back(dir + "/" + s.name + ".png");
		}
		if (!script)
			throw std::runtime_error("cannot write " + file);
	}
	if (!pngs.empty())
		run_gnuplot(file);
	return pngs;
}

} // namespace bench
