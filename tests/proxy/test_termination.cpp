// Termination causes against docs/decision-log.md's table, both ways.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "proxy/relay.hpp"
#include "proxy/termination.hpp"

using namespace sluice::proxy;

TEST_CASE("every termination cause is documented, and the docs name no other") {
  std::ifstream in(std::string(SLUICE_DOCS_DIR) + "/decision-log.md");
  std::stringstream s;
  s << in.rdbuf();
  const std::string doc = s.str();
  const size_t table = doc.find("| cause | meaning |");
  REQUIRE(table != std::string::npos);
  std::set<std::string> documented;
  std::istringstream lines(doc.substr(table));
  std::string line;
  std::getline(lines, line);  // header
  std::getline(lines, line);  // |---|
  while (std::getline(lines, line) && line.rfind("| `", 0) == 0) {
    const size_t end = line.find('`', 3);
    documented.insert(line.substr(3, end - 3));
  }
  std::set<std::string> code;
  for (Termination t : kAllTerminations) code.insert(termination_text(t));
  CHECK(documented == code);
  CHECK(std::size(kAllTerminations) == kTerminationCount - 1);  // all but None
}

TEST_CASE("each way a tunnel ends maps to its cause") {
  CHECK(termination_of(Relay::End::ClientEofFirst) == Termination::ClientEof);
  CHECK(termination_of(Relay::End::UpstreamEofFirst) == Termination::UpstreamEof);
  CHECK(termination_of(Relay::End::ClientError) == Termination::ClientReset);
  CHECK(termination_of(Relay::End::UpstreamError) == Termination::UpstreamReset);
  CHECK(termination_of(Relay::End::IdleTimeout) == Termination::IdleTimeout);
  CHECK(termination_of(Relay::End::LocalError) == Termination::ProxyError);
}
