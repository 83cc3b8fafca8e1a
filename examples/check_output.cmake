# Runs one example and checks its output (see dyt_check_example):
#   cmake -DPROGRAM=<path> -DARGS=<a;b;...> -DEXPECT=<regex;regex;...> -P check_output.cmake
execute_process(COMMAND "${PROGRAM}" ${ARGS}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}")
if(err)
  message("${err}")
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
foreach(regex IN LISTS EXPECT)
  if(NOT out MATCHES "${regex}")
    message(FATAL_ERROR "${PROGRAM}: its output does not match the expected /${regex}/")
  endif()
endforeach()
list(LENGTH EXPECT n)
message("output matches all ${n} expected patterns")
