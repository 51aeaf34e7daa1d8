# All third-party dependencies come from Debian packages (see README "Quick start").
find_package(Threads REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
# OpenBLAS provides BLAS and LAPACK; LAPACKE is the C interface on top.
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(LAPACKE REQUIRED IMPORTED_TARGET lapacke)
find_package(HDF5 REQUIRED COMPONENTS C)

add_library(muspec_hdf5 INTERFACE)
target_include_directories(muspec_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(muspec_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(muspec_hdf5 INTERFACE ${HDF5_DEFINITIONS} H5_USE_110_API)

# CUDA is optional: AUTO builds the CUDA backend when the toolkit is found.
set(MUSPEC_HAVE_CUDA OFF)
set(MUSPEC_HAVE_CUDA_BOOL false)
if(NOT MUSPEC_CUDA STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND TARGET CUDA::cusolver AND TARGET CUDA::cublas)
    set(MUSPEC_HAVE_CUDA ON)
    set(MUSPEC_HAVE_CUDA_BOOL true)
    message(STATUS "muspec: CUDA backend enabled (CUDA ${CUDAToolkit_VERSION})")
  elseif(MUSPEC_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MUSPEC_CUDA=ON but no CUDA toolkit with cuSOLVER/cuBLAS was found")
  else()
    message(STATUS "muspec: CUDA toolkit not found, building without CUDA")
  endif()
endif()

# A Python with numpy is optional: tests use it as an oracle when present (Debian's
# python3-numpy, installed by the README's commands); committed fixtures cover the rest.
set(MUSPEC_PYTHON "" CACHE STRING "Python interpreter with numpy (optional)")
if(NOT MUSPEC_PYTHON)
  foreach(candidate /usr/bin/python3 python3)
    execute_process(COMMAND ${candidate} -c "import numpy"
      RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(MUSPEC_PYTHON ${candidate} CACHE STRING "Python interpreter with numpy (optional)" FORCE)
      break()
    endif()
  endforeach()
endif()
message(STATUS "muspec: Python with numpy: ${MUSPEC_PYTHON}")
