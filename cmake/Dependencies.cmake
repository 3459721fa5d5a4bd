# Debian packages only (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)  # libopenmpi-dev (MPICH works too)
find_package(dnnl CONFIG REQUIRED)  # libdnnl-dev: oneDNN, the GEMM library (docs/decisions.md D8)
find_package(OpenMP QUIET)         # only bench/gemm_libraries.cpp uses OpenMP directly
find_package(OpenBLAS CONFIG QUIET) # libopenblas-dev: only the library-comparison bench uses it
find_package(CLI11 QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
endif()
find_package(nlohmann_json 3 REQUIRED)

if(OpenBLAS_FOUND)
  add_library(gmmav_openblas INTERFACE)
  target_include_directories(gmmav_openblas INTERFACE ${OpenBLAS_INCLUDE_DIRS})
  target_link_libraries(gmmav_openblas INTERFACE ${OpenBLAS_LIBRARIES})
endif()
