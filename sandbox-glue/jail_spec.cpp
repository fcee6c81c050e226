#include "sandbox-glue/jail_spec.hpp"

namespace sluice::glue {

std::vector<std::string> default_denied_reads() {
  return {".ssh",   ".aws",   ".gnupg",  ".config/gcloud", ".docker", ".kube", ".netrc", ".git-credentials",
          ".azure", ".npmrc", ".pypirc", ".config/gh"};
}

std::vector<std::string> default_denied_writes() {
  return {".git/hooks", ".git/config", ".gitconfig", ".bashrc", ".bash_profile",
          ".zshrc",     ".profile",    ".mcp.json",  ".vscode", ".idea"};
}

}  // namespace sluice::glue
