#include "sandbox-glue/trust_bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice::glue {

EnvList trust_environment(const std::string& bundle) {
  EnvList env;
  for (const char* name :
       {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "PIP_CERT",
        "AWS_CA_BUNDLE", "CARGO_HTTP_CAINFO", "DENO_CERT", "NIX_SSL_CERT_FILE"})
    env.emplace_back(name, bundle);
  return env;
}

std::string write_trust_bundle(const std::string& path, const std::string& ca_pem, const std::string& system_bundle) {
  std::string text;
  if (std::ifstream in(system_bundle, std::ios::binary); in) {
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  text += "# sluice inspection CA (this run)\n" + ca_pem;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot write " + path + ": " + std::strerror(errno);
  ::fchmod(fd, 0644);  // whatever the umask: every user in the jail reads it
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = "cannot write " + path + ": " + std::strerror(errno);
      ::close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return "";
}

}  // namespace sluice::glue
