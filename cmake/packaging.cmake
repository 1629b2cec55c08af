# `cmake --install build --prefix P`: the suite (and the benchmarks) in P/bin, the expectation
# lists in P/share/gmemtest/expect, the man page in P/share/man/man1.
# `cpack --config build/CPackConfig.cmake -G DEB` (or `cmake --build build --target package`): a .deb.
include(GNUInstallDirs)

install(TARGETS gmemtest RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT suite)
if(TARGET gmemtest_bench)
  install(TARGETS gmemtest_bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT suite)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/ci/expect/ DESTINATION ${CMAKE_INSTALL_DATADIR}/gmemtest/expect
        COMPONENT suite)
install(FILES ${PROJECT_SOURCE_DIR}/doc/gmemtest.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT suite)

set(CPACK_PACKAGE_NAME gmemtest)
set(CPACK_PACKAGE_VERSION 0.1.0)
set(CPACK_PACKAGE_CONTACT "gmemtest maintainers <gmemtest@invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "conformance and regression suite for the KVM guest_memfd interface")
set(CPACK_PACKAGE_DESCRIPTION "gmemtest checks the running kernel's KVM guest_memfd interface and the \
memory-management semantics around it, keyed on what the kernel reports it supports.")
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)   # the static suite needs nothing; the benchmarks need libbenchmark
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
