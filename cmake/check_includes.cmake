# Fails the build when a room includes a room it must not depend on.
# cmake -DROOM=<dir> -DFORBIDDEN="control;cli" -DSTAMP=<file> -P check_includes.cmake
file(GLOB files ${ROOM}/*.cpp ${ROOM}/*.hpp)
foreach(f ${files})
  foreach(other ${FORBIDDEN})
    file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]${other}/")
    if(hits)
      message(FATAL_ERROR "${f}: includes ${other}/, which ${ROOM} must not depend on: ${hits}")
    endif()
  endforeach()
endforeach()
file(TOUCH ${STAMP})
