# Unity builds (SLUICE_UNITY=ON, which scripts/setup.sh sets): batches of sources compiled
# as one translation unit, so the heavy headers (libuv, yaml-cpp, nlohmann, CLI11, doctest)
# are parsed once per batch instead of once per file: it keeps the four builds of CI's suite
# within its time. The files below define same-named helpers in anonymous namespaces (or
# rely on a file-local name elsewhere) and are compiled alone.
set(SLUICE_UNITY_ALONE
  tests/glue/test_original_dst.cpp
  cli/run_seatbelt.cpp
  cli/ctl.cpp
  tests/rules/test_fake_ip.cpp
  tests/proxy/test_parent_handshake.cpp
  tests/proxy/test_dns_message.cpp
  tests/control/test_state_file.cpp
  bench/upstream.cpp
  bench/lua_calls.cpp
  rules/pattern.cpp
  rules/host_set.cpp
)
foreach(f ${SLUICE_UNITY_ALONE})
  set_source_files_properties(${CMAKE_SOURCE_DIR}/${f} DIRECTORY ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/tests
                              PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endforeach()
