#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tls/engine.hpp"

namespace tls_test {

// A fresh private temp dir, removed at scope end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sluice-tls-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Moves ciphertext between two engines until both handshakes end (bounded rounds).
inline void pump_handshake(sluice::tls::Engine& client, sluice::tls::Engine& server, sluice::tls::Engine::Status& cs,
                           sluice::tls::Engine::Status& ss) {
  using S = sluice::tls::Engine::Status;
  cs = S::WantIo;
  ss = S::WantIo;
  for (int round = 0; round < 20; ++round) {
    if (cs == S::WantIo) cs = client.handshake();
    server.feed(client.take_output());
    if (ss == S::WantIo) ss = server.handshake();
    client.feed(server.take_output());
    if (cs != S::WantIo && ss != S::WantIo) break;
    if (cs == S::Failed || ss == S::Failed) {
      // Let the alert reach the other side once, then stop.
      if (cs == S::WantIo) cs = client.handshake();
      server.feed(client.take_output());
      if (ss == S::WantIo) ss = server.handshake();
      break;
    }
  }
}

}  // namespace tls_test
