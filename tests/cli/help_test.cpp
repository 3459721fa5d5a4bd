// `gmmav <subcommand> --help` exits 0 and mentions every visible option of
// the subcommand, as CLI11 registers them (so a new option cannot go
// undocumented); hidden (test-only) options stay out of the help.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"

#ifndef GMMAV_CLI
#error "GMMAV_CLI (the path of the gmmav executable) must be defined"
#endif

namespace {

struct Output {
  int status = -1;
  std::string text;
};

Output run(const std::string& args) {
  Output o;
  const std::string cmd = std::string("'") + GMMAV_CLI + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) o.text.append(buf.data(), n);
  const int st = pclose(p);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

// The same app gmmav_main.cpp builds (its tools commands).
CLI::App& app() {
  static CLI::App a{"gmmav"};
  static bool built = false;
  if (!built) {
    gmmav::cli::add_run_command(a);
    gmmav::cli::add_verify_command(a);
    built = true;
  }
  return a;
}

std::vector<CLI::App*> subcommands() {
  return app().get_subcommands([](CLI::App*) { return true; });
}

TEST(Help, TopLevelListsEverySubcommand) {
  const Output o = run("--help");
  ASSERT_EQ(o.status, 0) << o.text;
  for (CLI::App* sub : subcommands()) EXPECT_NE(o.text.find(sub->get_name()), std::string::npos) << sub->get_name();
}

TEST(Help, EverySubcommandDocumentsEveryOption) {
  ASSERT_GE(subcommands().size(), 2u);
  for (CLI::App* sub : subcommands()) {
    SCOPED_TRACE(sub->get_name());
    const Output o = run(sub->get_name() + " --help");
    ASSERT_EQ(o.status, 0) << o.text;
    int visible = 0;
    for (const CLI::Option* opt : sub->get_options()) {
      std::vector<std::string> names;
      for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
      for (const auto& s : opt->get_snames()) names.push_back("-" + s);
      for (const auto& name : names) {
        if (opt->get_group().empty())
          EXPECT_EQ(o.text.find(name), std::string::npos) << "hidden option " << name << " shows in the help";
        else
          EXPECT_NE(o.text.find(name), std::string::npos) << name << " is not in `gmmav " << sub->get_name() << " --help`";
      }
      visible += !opt->get_group().empty();
    }
    EXPECT_GT(visible, 1);
  }
}

// Subcommands registered elsewhere (e.g. `gmmav bench`) still answer --help with 0.
TEST(Help, EveryListedSubcommandAnswersHelp) {
  const Output top = run("--help");
  ASSERT_EQ(top.status, 0);
  std::istringstream in(top.text);
  std::string line;
  bool in_list = false;
  int seen = 0;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.size() < 3 || line[0] != ' ' || line[2] == ' ') continue;
    std::istringstream words(line);
    std::string name;
    words >> name;
    const Output o = run(name + " --help");
    EXPECT_EQ(o.status, 0) << name << ": " << o.text;
    ++seen;
  }
  EXPECT_GE(seen, 2) << top.text;
}

TEST(Help, HiddenFaultInjectionStillParses) {
  const Output o = run("run --inject-fault nonsense");
  EXPECT_EQ(o.status, 2) << o.text;  // a usage error, not an unknown option silently ignored
}

TEST(Help, UsageErrorsExitTwo) {
  EXPECT_EQ(run("").status, 2);
  EXPECT_EQ(run("no-such-command").status, 2);
  EXPECT_EQ(run("verify").status, 2);  // --inputs is required
  EXPECT_EQ(run("verify --inputs /nonexistent-dir").status, 2);
}

}  // namespace
