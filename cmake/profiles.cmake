# Series UAPI profiles chosen at build time (fixtures/uapi/series/). The kernel's own headers win
# over any profile; a profile named here is used only for symbols those headers lack.
set(GMEMTEST_SERIES_PROFILES_DEFINE "${GMEMTEST_SERIES_PROFILES}")
string(REPLACE ";" "," GMEMTEST_SERIES_PROFILES_DEFINE "${GMEMTEST_SERIES_PROFILES_DEFINE}")
add_compile_definitions(GMEMTEST_BUILD_PROFILES="${GMEMTEST_SERIES_PROFILES_DEFINE}")
