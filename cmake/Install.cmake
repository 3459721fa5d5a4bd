# `cmake --install build --prefix P`: the public headers, libgmmav (and
# libgmmav_aclnn), the `gmmav` CLI, a CMake package (find_package(gmmav CONFIG)
# -> gmmav::gmmav, gmmav::aclnn) and pkg-config files (gmmav.pc, gmmav-aclnn.pc).
# Everything is relocatable: binaries find the libraries through $ORIGIN, the
# package files locate the prefix from where they are installed.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GMMAV_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gmmav)

# RPATH: the CLI looks in ../lib (relative to bin/), libgmmav_aclnn beside itself
# for libgmmav; dependencies outside the system paths (e.g. an MPI in /opt) stay found.
file(RELATIVE_PATH _gmmav_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set_target_properties(gmmav PROPERTIES INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH TRUE)
set_target_properties(gmmav_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${_gmmav_bin_to_lib}" INSTALL_RPATH_USE_LINK_PATH TRUE)

set(_gmmav_libraries gmmav)
if(TARGET gmmav_aclnn)
  set_target_properties(gmmav_aclnn PROPERTIES EXPORT_NAME aclnn INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH TRUE)
  list(APPEND _gmmav_libraries gmmav_aclnn)
endif()

install(TARGETS ${_gmmav_libraries} EXPORT gmmavTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS gmmav_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# `gmmav bench --torch` and `--python`: the Python baselines and the case reader they share, found
# relative to the installed CLI (bench/baselines/python_baseline.cpp).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/bench/baselines/torch/torch_composite.py
                 ${PROJECT_SOURCE_DIR}/bench/baselines/torch/gmmav_python.py DESTINATION ${CMAKE_INSTALL_DATADIR}/gmmav)
install(FILES ${PROJECT_SOURCE_DIR}/bench/baselines/torch/bench_case.py DESTINATION ${CMAKE_INSTALL_DATADIR}/gmmav)
# gmmav/build_options.hpp is generated (its template stays behind); gmmav/mpi.hpp only with MPI (D98).
set(_gmmav_header_excludes PATTERN "*.in" EXCLUDE)
if(NOT GMMAV_WITH_MPI)
  list(APPEND _gmmav_header_excludes PATTERN "mpi.hpp" EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gmmav ${PROJECT_SOURCE_DIR}/include/acl ${PROJECT_SOURCE_DIR}/include/hccl
                  ${PROJECT_SOURCE_DIR}/include/aclnn ${PROJECT_SOURCE_DIR}/include/aclnnop
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} ${_gmmav_header_excludes})
install(FILES ${PROJECT_BINARY_DIR}/include/gmmav/build_options.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gmmav)

# CMake package.
install(EXPORT gmmavTargets NAMESPACE gmmav:: DESTINATION ${GMMAV_INSTALL_CMAKEDIR} FILE gmmavTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/packaging/gmmavConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/packaging/gmmavConfig.cmake
                              INSTALL_DESTINATION ${GMMAV_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/gmmavConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/packaging/gmmavConfig.cmake ${PROJECT_BINARY_DIR}/packaging/gmmavConfigVersion.cmake
        DESTINATION ${GMMAV_INSTALL_CMAKEDIR})

# pkg-config. With MPI (GMMAV_WITH_MPI), MPI is a public dependency (gmmav/mpi.hpp
# includes <mpi.h>, and MPI_COMM_WORLD is a symbol of libmpi): required through
# MPI's own .pc file when there is one, else its flags as FindMPI found them.
set(GMMAV_PC_REQUIRES "")
set(GMMAV_PC_MPI_CFLAGS "")
set(GMMAV_PC_MPI_LIBS "")
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND AND GMMAV_WITH_MPI)
  foreach(_module ompi-cxx mpich)
    execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --exists ${_module} RESULT_VARIABLE _rc)
    if(_rc EQUAL 0)
      set(GMMAV_PC_REQUIRES ${_module})
      break()
    endif()
  endforeach()
endif()
if(NOT GMMAV_PC_REQUIRES AND GMMAV_WITH_MPI)
  foreach(_dir IN LISTS MPI_CXX_INCLUDE_DIRS)
    string(APPEND GMMAV_PC_MPI_CFLAGS " -I${_dir}")
  endforeach()
  string(JOIN " " GMMAV_PC_MPI_LIBS ${MPI_CXX_LIBRARIES})
endif()
file(RELATIVE_PATH GMMAV_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" GMMAV_PC_PREFIX_FROM_PCDIR "${GMMAV_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/packaging/gmmav.pc.in ${PROJECT_BINARY_DIR}/packaging/gmmav.pc @ONLY)
set(_gmmav_pc_files ${PROJECT_BINARY_DIR}/packaging/gmmav.pc)
if(TARGET gmmav_aclnn)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/gmmav-aclnn.pc.in ${PROJECT_BINARY_DIR}/packaging/gmmav-aclnn.pc @ONLY)
  list(APPEND _gmmav_pc_files ${PROJECT_BINARY_DIR}/packaging/gmmav-aclnn.pc)
endif()
install(FILES ${_gmmav_pc_files} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
