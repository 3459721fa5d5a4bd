# Debian packages only (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
# MPI (libopenmpi-dev; MPICH works too) is the backend of one process per rank, and optional
# (GMMAV_WITH_MPI, D98): default ON when MPI is found. OFF: no MPI header or library anywhere in
# the build; the in-process and torch.distributed backends, the C API's single-process paths and
# the CLI without mpirun work as before.
set(_gmmav_mpi_why "GMMAV_WITH_MPI=OFF")
if(NOT DEFINED GMMAV_WITH_MPI)
  find_package(MPI QUIET COMPONENTS CXX)
  set(_gmmav_mpi_default ${MPI_FOUND})
  if(NOT MPI_FOUND)
    set(_gmmav_mpi_why "no MPI found, so GMMAV_WITH_MPI defaults to OFF")
  endif()
else()
  set(_gmmav_mpi_default ON)
endif()
option(GMMAV_WITH_MPI "Build the MPI backend (gmmav/mpi.hpp, HcclCommInitRootInfo across processes, --backend mpi)"
       ${_gmmav_mpi_default})
if(GMMAV_WITH_MPI)
  find_package(MPI COMPONENTS CXX)
  if(NOT MPI_FOUND)
    message(FATAL_ERROR "gmmav: GMMAV_WITH_MPI=ON but no MPI found (C++ bindings). On Debian: scripts/setup.sh "
                        "installs libopenmpi-dev; or configure with -DGMMAV_WITH_MPI=OFF to build without the MPI backend.")
  endif()
  message(STATUS "gmmav: MPI backend ON (GMMAV_WITH_MPI=ON; ${MPIEXEC_EXECUTABLE}, MPI ${MPI_CXX_VERSION})")
else()
  message(STATUS "gmmav: MPI backend OFF (${_gmmav_mpi_why}): no groups of one process per rank; "
                 "install libopenmpi-dev and configure with -DGMMAV_WITH_MPI=ON to build it")
endif()
set(GMMAV_WITH_MPI_01 0)
if(GMMAV_WITH_MPI)
  set(GMMAV_WITH_MPI_01 1)
endif()
# oneDNN (libdnnl-dev), the GEMM library (docs/decisions.md D8), found by its header and library,
# not by Debian's dnnl-config.cmake: that config demands the OpenCL headers (its GPU runtime), which
# a CPU-only user does not need and a fresh Debian does not have (D11).
find_path(GMMAV_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
find_library(GMMAV_DNNL_LIBRARY NAMES dnnl)
if(NOT GMMAV_DNNL_INCLUDE_DIR OR NOT GMMAV_DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found (header oneapi/dnnl/dnnl.hpp: ${GMMAV_DNNL_INCLUDE_DIR}, "
                      "library libdnnl: ${GMMAV_DNNL_LIBRARY}). On Debian: scripts/setup.sh installs "
                      "libdnnl-dev; elsewhere set CMAKE_PREFIX_PATH to oneDNN's install prefix.")
endif()
if(NOT TARGET DNNL::dnnl)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION "${GMMAV_DNNL_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${GMMAV_DNNL_INCLUDE_DIR}")
endif()
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
