// Raw HDF5 for tests that craft malformed stores or read the layout back independently of the
// store's own code. The test target does not get HDF5's include directory from the (privately
// linked) core library, so look for the header where Debian installs it; MUSPEC_TEST_HDF5 is
// defined when it was found.
#pragma once

#if defined(__has_include)
#if __has_include(<hdf5.h>)
#define MUSPEC_TEST_HDF5 1
#ifndef H5_USE_110_API
#define H5_USE_110_API
#endif
#include <hdf5.h>
#elif __has_include(<hdf5/serial/hdf5.h>)
#define MUSPEC_TEST_HDF5 1
#ifndef H5_USE_110_API
#define H5_USE_110_API
#endif
#include <hdf5/serial/hdf5.h>
#endif
#endif
