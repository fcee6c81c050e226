#pragma once

namespace sluice::cli {

int serve_main(int argc, char** argv);  // argv[0] is "serve"
int check_main(int argc, char** argv);  // argv[0] is "check"

}  // namespace sluice::cli
