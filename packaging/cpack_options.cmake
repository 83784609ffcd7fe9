# Read by cpack for each generator: the .deb installs under /usr; the .tar.gz is a relocatable
# tree (bin/, lib/, include/, share/) to unpack anywhere.
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
else()
  set(CPACK_PACKAGING_INSTALL_PREFIX "")
  set(CPACK_SET_DESTDIR OFF)
endif()
