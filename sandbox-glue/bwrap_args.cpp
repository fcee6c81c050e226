#include "sandbox-glue/bwrap_args.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "sandbox-glue/trust_bundle.hpp"

namespace sluice::glue {

PathKind probe_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return PathKind::Missing;
  return S_ISDIR(st.st_mode) ? PathKind::Dir : PathKind::File;
}

namespace {

std::string join(const std::string& dir, const std::string& name) {
  if (name.empty()) return dir;
  if (!name.empty() && name.front() == '/') return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Names that are directories when they exist; a missing one is held by an empty dir.
bool is_dir_name(const std::string& name) { return name == ".git/hooks" || name == ".vscode" || name == ".idea"; }

}  // namespace

BwrapPlan build_bwrap_plan(const JailSpec& spec, const PathProbe& probe, const std::string& empty_dir) {
  BwrapPlan plan;
  auto& a = plan.argv;
  auto add = [&](std::initializer_list<std::string> words) { a.insert(a.end(), words); };
  add({"bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
  // A fresh /run hides the host's sockets (docker, dbus, systemd) and holds ours.
  add({"--tmpfs", "/run"});
  std::vector<std::string> writable{spec.cwd};
  for (const auto& w : spec.writable)
    if (std::find(writable.begin(), writable.end(), w) == writable.end()) writable.push_back(w);
  for (const auto& w : writable) add({"--bind", w, w});
  for (const auto& path : spec.denied_reads) {
    switch (probe(path)) {
      case PathKind::Dir: add({"--tmpfs", path}); break;
      case PathKind::File: add({"--ro-bind", "/dev/null", path}); break;
      case PathKind::Missing: break;  // nothing to hide; creating it is a write to $HOME, which is read-only
    }
  }
  for (const auto& w : writable) {
    for (const auto& name : spec.denied_writes) {
      std::string path = join(w, name);
      switch (probe(path)) {
        case PathKind::Dir:
        case PathKind::File: add({"--ro-bind", path, path}); break;
        case PathKind::Missing:
          // Hold the name with a read-only mount point so it cannot be created,
          // but only where its parent exists (never invent a .git).
          if (probe(parent_of(path)) != PathKind::Dir) break;
          add({"--ro-bind", is_dir_name(name) ? empty_dir : "/dev/null", path});
          plan.placeholders.push_back(path);
          break;
      }
    }
  }
  // /tmp and /run are fresh tmpfs already; anywhere else the runtime dir is hidden explicitly.
  const std::string& rd = spec.runtime_dir;
  if (!rd.empty() && rd.rfind("/tmp/", 0) != 0 && rd.rfind("/run/", 0) != 0) add({"--tmpfs", rd});
  add({"--bind", spec.socket_host_path, spec.socket_jail_path});
  add({"--ro-bind", spec.sluice_binary, spec.sluice_jail_path});
  if (!spec.trust_bundle.empty()) {
    add({"--ro-bind", spec.trust_bundle, spec.trust_bundle_jail_path});
    // Programs that read the system bundle with no variable set trust sluice's CA too.
    if (probe(kSystemTrustBundle) == PathKind::File) add({"--ro-bind", spec.trust_bundle, kSystemTrustBundle});
  }
  const auto& t = spec.transparent;
  if (t.on) {
    add({"--ro-bind", t.resolv_conf_host_path, "/etc/resolv.conf"});
    add({"--bind", t.dns_socket_host_path, t.dns_socket_jail_path});
  }
  add({"--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
       "--as-pid-1", "--cap-drop", "ALL"});
  // Only jail-init holds it: it installs the rules, then drops every capability for good.
  if (t.on) add({"--cap-add", "CAP_NET_ADMIN"});
  add({"--chdir", spec.cwd});
  for (const auto& k : spec.unset_env) add({"--unsetenv", k});
  for (const auto& [k, v] : spec.env) add({"--setenv", k, v});
  add({"--", spec.sluice_jail_path, "jail-init", "--socket", spec.socket_jail_path, "--port",
       std::to_string(spec.bridge_port)});
  for (int fd : spec.channel_fds) add({"--channel-fd", std::to_string(fd)});
  if (t.on)
    add({"--transparent", "--dns-socket", t.dns_socket_jail_path, "--fake-ipv4", t.fake_ipv4, "--fake-ipv6",
         t.fake_ipv6});
  add({"--"});
  a.insert(a.end(), spec.command.begin(), spec.command.end());
  return plan;
}

std::string shell_quote(const std::string& w) {
  bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("@%_+=:,./-").find(c) != std::string_view::npos;
  });
  if (plain) return w;
  std::string out = "'";
  for (char c : w) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace sluice::glue
