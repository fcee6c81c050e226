// The state file is replaced atomically, private to its owner, and the writer
// thread saves the latest contents.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "control/state_file.hpp"

using namespace sluice::proxy;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/sluice-state-test-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

}  // namespace

TEST_CASE("write_file_atomically: writes, replaces, mode 0600, no temporary left") {
  TempDir d;
  std::string file = d.path + "/state.json";
  CHECK(write_file_atomically(file, "one\n").empty());
  CHECK(slurp(file) == "one\n");
  CHECK(write_file_atomically(file, "two\n").empty());
  CHECK(slurp(file) == "two\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(::access((file + ".tmp." + std::to_string(::getpid())).c_str(), F_OK) != 0);
  std::string err = write_file_atomically(d.path + "/no/such/dir/state.json", "x");
  CHECK(err.find("cannot write") != std::string::npos);
}

TEST_CASE("StateFileWriter: the last save is what the file holds after flush") {
  TempDir d;
  std::string file = d.path + "/s.json";
  std::string error;
  {
    StateFileWriter w(file, [&](const std::string& e) { error = e; });
    for (int i = 0; i < 50; ++i) w.save("v" + std::to_string(i) + "\n");
    w.flush();
    CHECK(slurp(file) == "v49\n");
    w.save("final\n");
  }  // the destructor writes what was saved last
  CHECK(slurp(file) == "final\n");
  CHECK(error.empty());
  StateFileWriter bad(d.path + "/missing/s.json", [&](const std::string& e) { error = e; });
  bad.save("x");
  bad.flush();
  CHECK(error.find("cannot write") != std::string::npos);
}
