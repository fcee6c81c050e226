#pragma once

namespace sluice::cli {

int serve_main(int argc, char** argv);  // argv[0] is "serve"
int check_main(int argc, char** argv);  // argv[0] is "check"
int run_main(int argc, char** argv);
int jail_init_main(int argc, char** argv);
int connect_main(int argc, char** argv);
int bench_main(int argc, char** argv);  // argv[0] is "bench"
int ctl_main(int argc, char** argv);    // argv[0] is "ctl"

}  // namespace sluice::cli
