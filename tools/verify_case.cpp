#include "verify_case.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <regex>
#include <set>

#include "npy.hpp"

namespace gmmav::cli {
namespace {

namespace fs = std::filesystem;
using Shape = std::vector<std::int64_t>;

const char* const kTensors[] = {"gmmX",     "gmmWeight", "sendCounts", "recvCounts", "mmX",
                                "mmWeight", "y",         "mmY",        "gmmY",       "permuteOut"};

[[noreturn]] void bad(const std::string& what) { throw InputError(what); }

std::string dims(const Shape& s) { return shape_string(s); }

std::string file_kind(fs::file_type link, fs::file_type target) {
  if (link == fs::file_type::symlink && target == fs::file_type::not_found) return "a dangling symbolic link";
  switch (target) {
    case fs::file_type::directory:
      return "a directory";
    case fs::file_type::fifo:
      return "a FIFO (named pipe)";
    case fs::file_type::socket:
      return "a socket";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::character:
      return "a character device";
    default:
      return "something else";
  }
}

// Which ranks have a file for each tensor name.
std::map<std::string, std::set<int>> scan(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) bad(dir.string() + ": not a directory (--inputs)");
  static const std::regex name(
      R"(^(gmmX|gmmWeight|sendCounts|recvCounts|mmX|mmWeight|y|mmY|gmmY|permuteOut)_r(0|[1-9][0-9]{0,5})\.npy$)");
  std::map<std::string, std::set<int>> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (!std::regex_match(file, m, name)) continue;
    // Opening a FIFO or a device would block or read forever: only regular files (or links to them).
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec))
      bad(file + " in " + dir.string() + ": expected a regular file, got " +
          file_kind(entry.symlink_status(type_ec).type(), entry.status(type_ec).type()));
    found[m[1]].insert(std::stoi(m[2]));
  }
  return found;
}

class Loader {
 public:
  Loader(const fs::path& dir, const CaseLayout& layout) : dir_(dir), layout_(layout) {}

  // A 16-bit tensor of the case's dtype and the given number of dimensions.
  NpyArray tensor(const std::string& name, int rank, std::size_t ndim) const {
    const std::string file = case_file(name, rank);
    NpyArray a = read_npy(dir_ / file);
    const std::string want = npy_descr(layout_.dtype);
    if (a.descr != want) {
      std::string hint;
      if (a.descr == "<u2") hint = "; '<u2' holds BF16 bit patterns: pass --dtype bf16";
      if (a.descr == "<f2") hint = "; '<f2' is FP16: pass --dtype fp16 (the default)";
      bad(file + ": dtype '" + a.descr + "' found, but --dtype " + (layout_.dtype == DType::f16 ? "fp16" : "bf16") +
          " expects '" + want + "'" + hint);
    }
    if (a.shape.size() != ndim) bad(file + ": expected a " + std::to_string(ndim) + "-D array, got shape " + dims(a.shape));
    return a;
  }

  // The counts of one file and their sum (`rows`: what the sum is the rows of), each count >= 0 and
  // the sum checked: counts are user data, and a sum that wrapped would be reported as a negative row count.
  std::vector<std::int64_t> counts(const std::string& name, int rank, std::size_t length, const std::string& rows,
                                   std::int64_t& sum) const {
    const std::string file = case_file(name, rank);
    NpyArray a = read_npy(dir_ / file);
    if (a.descr != "<i8") bad(file + ": dtype '" + a.descr + "' found, expected int64 '<i8'");
    if (a.shape.size() != 1 || a.shape[0] != static_cast<std::int64_t>(length))
      bad(file + ": expected shape (" + std::to_string(length) + ",) (e * W counts), got " + dims(a.shape));
    auto v = a.values<std::int64_t>();
    sum = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] < 0) bad(file + ": count [" + std::to_string(i) + "] is " + std::to_string(v[i]) + ", expected >= 0");
      if (v[i] > std::numeric_limits<std::int64_t>::max() - sum)
        bad(file + ": sum overflows int64: expected sum(" + file + ") (" + rows +
            ") <= " + std::to_string(std::numeric_limits<std::int64_t>::max()) + ", got counts [0.." + std::to_string(i - 1) +
            "] = " + std::to_string(sum) + " plus count [" + std::to_string(i) + "] = " + std::to_string(v[i]));
      sum += v[i];
    }
    return v;
  }

  void expect_shape(const std::string& file, const NpyArray& a, const Shape& want, const std::string& why) const {
    if (a.shape != want) bad(file + ": expected shape " + dims(want) + " (" + why + "), got " + dims(a.shape));
  }

 private:
  fs::path dir_;
  CaseLayout layout_;
};

void check_files(const std::map<std::string, std::set<int>>& found, const fs::path& dir, Op op, int& world_size, bool& shared) {
  auto has = [&](const std::string& t, int r) {
    auto it = found.find(t);
    return it != found.end() && it->second.count(r) != 0;
  };
  // An expected output of the other operator: the case was written for it.
  const bool dispatch = op == Op::dispatch;
  const char* const name = dispatch ? "dispatch" : "combine";
  const char* const other = dispatch ? "combine" : "dispatch";
  for (const char* t : dispatch ? std::vector<const char*>{"y"} : std::vector<const char*>{"gmmY", "permuteOut"}) {
    auto it = found.find(t);
    if (it != found.end())
      bad(case_file(t, *it->second.begin()) + " found in " + dir.string() + ", but the " + name + " op's outputs are " +
          (dispatch ? "gmmY_r*.npy, mmY_r*.npy and permuteOut_r*.npy" : "y_r*.npy and mmY_r*.npy") + " (pass --op " + other +
          " for a " + other + " case)");
  }
  if (!has("gmmX", 0)) bad(dir.string() + ": no " + case_file("gmmX", 0) + " (a case needs gmmX_r{r}.npy for r = 0..W-1)");
  world_size = *found.at("gmmX").rbegin() + 1;
  for (int r = 0; r < world_size; ++r)
    if (!has("gmmX", r))
      bad(case_file("gmmX", r) + " is missing from " + dir.string() + " (found " + case_file("gmmX", world_size - 1) +
          "; ranks must be consecutive from 0)");
  shared = has("mmX", 0) || has("mmWeight", 0);
  for (int r = 0; r < world_size; ++r) {
    for (const char* t : {"gmmWeight", "sendCounts", "recvCounts"})
      if (!has(t, r)) bad(case_file(t, r) + " is missing from " + dir.string() + " (rank " + std::to_string(r) + " has gmmX)");
    for (const char* t : {"mmX", "mmWeight"}) {
      if (shared && !has(t, r))
        bad(case_file(t, r) + " is missing from " + dir.string() +
            " (the case has a shared expert: " + (has("mmX", 0) ? case_file("mmX", 0) : case_file("mmWeight", 0)) + " exists)");
      if (!shared && has(t, r))
        bad(case_file(t, r) + " found, but " + case_file(has("mmX", 0) ? "mmWeight" : "mmX", 0) +
            " is missing (the shared expert needs mmX and mmWeight on every rank)");
    }
    if (!shared && has("mmY", r))
      bad(case_file("mmY", r) + " found, but the case has no shared expert (no mmX_r*.npy / mmWeight_r*.npy)");
  }
  for (const char* t : kTensors) {
    auto it = found.find(t);
    if (it != found.end() && *it->second.rbegin() >= world_size)
      bad(case_file(t, *it->second.rbegin()) + ": no such rank (the gmmX_r*.npy files give W = " + std::to_string(world_size) +
          ")");
  }
}

// docs/spec.md §2: recvCounts@d[s*e + j] == sendCounts@s[d*e + j], named by file.
void check_contract(const std::vector<RankCase>& ranks, int e) {
  const int W = static_cast<int>(ranks.size());
  for (int s = 0; s < W; ++s)
    for (int d = 0; d < W; ++d)
      for (int j = 0; j < e; ++j) {
        const auto sent = ranks[static_cast<std::size_t>(s)].desc.send_counts[static_cast<std::size_t>(d * e + j)];
        const auto recv = ranks[static_cast<std::size_t>(d)].desc.recv_counts[static_cast<std::size_t>(s * e + j)];
        if (sent != recv)
          bad("counts break the cross-rank contract at (source " + std::to_string(s) + ", destination " + std::to_string(d) +
              ", expert " + std::to_string(j) + "): " + case_file("sendCounts", s) + "[" + std::to_string(d * e + j) +
              "] = " + std::to_string(sent) + " but " + case_file("recvCounts", d) + "[" + std::to_string(s * e + j) +
              "] = " + std::to_string(recv));
      }
}

}  // namespace

std::string case_file(const std::string& tensor, int rank) { return tensor + "_r" + std::to_string(rank) + ".npy"; }

const char* routed_output(Op op) { return op == Op::dispatch ? "gmmY" : "y"; }

const char* npy_descr(DType dtype) { return dtype == DType::f16 ? "<f2" : "<u2"; }

VerifyCase load_verify_case(const fs::path& dir, const CaseLayout& layout) {
  const auto found = scan(dir);
  int W = 0;
  bool shared = false;
  check_files(found, dir, layout.op, W, shared);
  const bool dispatch = layout.op == Op::dispatch;
  auto has = [&](const std::string& t, int r) {
    auto it = found.find(t);
    return it != found.end() && it->second.count(r) != 0;
  };

  VerifyCase c;
  c.dir = dir;
  c.layout = layout;
  c.ranks.resize(static_cast<std::size_t>(W));
  const Loader load(dir, layout);
  for (int r = 0; r < W; ++r) {
    RankCase& rc = c.ranks[static_cast<std::size_t>(r)];
    ProblemDesc& d = rc.desc;
    d.op = layout.op;
    d.world_size = W;
    d.rank = r;
    d.dtype = layout.dtype;
    d.trans_gmm_weight = layout.trans_gmm_weight;

    const std::string wfile = case_file("gmmWeight", r);
    NpyArray w = load.tensor("gmmWeight", r, 3);
    const std::int64_t e = w.shape[0];
    d.h1 = layout.trans_gmm_weight ? w.shape[2] : w.shape[1];
    d.n1 = layout.trans_gmm_weight ? w.shape[1] : w.shape[2];
    if (e < 1 || d.h1 < 1 || d.n1 < 1)
      bad(wfile + ": expected " + (layout.trans_gmm_weight ? "(e, N1, H1)" : "(e, H1, N1)") + " with every dimension >= 1, got " +
          dims(w.shape));
    // e becomes an int (ProblemDesc::local_experts): refused above the Plan's limit, not truncated.
    if (e > (1 << 30)) bad(wfile + ": expected e (dim 0) <= 2^30, got " + dims(w.shape));
    if (r > 0) {
      const ProblemDesc& d0 = c.ranks[0].desc;
      if (e != d0.local_experts || d.n1 != d0.n1)
        bad(wfile + ": shape " + dims(w.shape) + " disagrees with " + case_file("gmmWeight", 0) + " (e = " +
            std::to_string(d0.local_experts) + ", N1 = " + std::to_string(d0.n1) + ": every rank has the same e and N1)");
    }
    d.local_experts = static_cast<int>(e);
    rc.gmm_weight = w.values<std::uint16_t>();

    const std::size_t ncounts = static_cast<std::size_t>(e) * static_cast<std::size_t>(W);
    d.send_counts = load.counts("sendCounts", r, ncounts, "the rows of " + case_file("gmmX", r), rc.rows_in);
    d.recv_counts =
        load.counts("recvCounts", r, ncounts,
                    std::string("the rows of ") + routed_output(layout.op) + "_r" + std::to_string(r) + ".npy", rc.rows_out);

    NpyArray x = load.tensor("gmmX", r, 2);
    load.expect_shape(case_file("gmmX", r), x, {rc.rows_in, d.h1},
                      std::string(dispatch ? "BSK" : "A") + " = sum(" + case_file("sendCounts", r) +
                          ") = " + std::to_string(rc.rows_in) + ", H1 = " + std::to_string(d.h1) + " from " + wfile);
    rc.gmm_x = x.values<std::uint16_t>();

    if (shared) {
      const std::string mwfile = case_file("mmWeight", r);
      NpyArray mw = load.tensor("mmWeight", r, 2);
      SharedExpertDesc s;
      s.trans_mm_weight = layout.trans_mm_weight;
      s.h2 = layout.trans_mm_weight ? mw.shape[1] : mw.shape[0];
      s.n2 = layout.trans_mm_weight ? mw.shape[0] : mw.shape[1];
      if (s.h2 < 1 || s.n2 < 1)
        bad(mwfile + ": expected " + (layout.trans_mm_weight ? "(N2, H2)" : "(H2, N2)") + " with every dimension >= 1, got " +
            dims(mw.shape));
      NpyArray mx = load.tensor("mmX", r, 2);
      if (mx.shape[1] != s.h2 || mx.shape[0] < 1)
        bad(case_file("mmX", r) + ": expected shape (BS, " + std::to_string(s.h2) + ") with BS >= 1 (H2 from " + mwfile +
            "), got " + dims(mx.shape));
      s.bs = mx.shape[0];
      d.shared = s;
      rc.mm_x = mx.values<std::uint16_t>();
      rc.mm_weight = mw.values<std::uint16_t>();
    } else if (layout.trans_mm_weight) {
      bad("--trans-mm-weight given, but the case has no shared expert (no " + case_file("mmWeight", r) + ")");
    }

    const std::string rows_out =
        std::string(dispatch ? "A" : "BSK") + " = sum(" + case_file("recvCounts", r) + ") = " + std::to_string(rc.rows_out);
    const char* y_name = routed_output(layout.op);
    if (has(y_name, r)) {
      NpyArray y = load.tensor(y_name, r, 2);
      load.expect_shape(case_file(y_name, r), y, {rc.rows_out, d.n1}, rows_out + ", N1 = " + std::to_string(d.n1));
      rc.expected_y = y.values<std::uint16_t>();
    }
    if (dispatch && has("permuteOut", r)) {
      NpyArray p = load.tensor("permuteOut", r, 2);
      load.expect_shape(case_file("permuteOut", r), p, {rc.rows_out, d.h1}, rows_out + ", H1 = " + std::to_string(d.h1));
      rc.expected_permute_out = p.values<std::uint16_t>();
      d.permute_out = true;  // the run writes it too, to compare
    }
    if (has("mmY", r)) {
      NpyArray y = load.tensor("mmY", r, 2);
      load.expect_shape(case_file("mmY", r), y, {d.shared->bs, d.shared->n2}, "BS from mmX, N2 from mmWeight");
      rc.expected_mm_y = y.values<std::uint16_t>();
    }
  }
  check_contract(c.ranks, c.ranks[0].desc.local_experts);
  return c;
}

}  // namespace gmmav::cli
