# Install layout and the .deb (cpack -G DEB). Included after every add_subdirectory so
# that waypointctl is installed once its target exists.
include(GNUInstallDirs)
if(TARGET waypointctl)
  install(TARGETS waypointctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# The source unit names /usr/local/bin; the installed one names the prefix it is installed
# under, read at install time (cpack installs under CPACK_PACKAGING_INSTALL_PREFIX).
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/systemd/waypointd.service\" unit)
  string(REPLACE \"/usr/local/bin/\" \"\${CMAKE_INSTALL_PREFIX}/bin/\" unit \"\${unit}\")
  file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/waypointd.service\" \"\${unit}\")
")
# An operator's files in /etc/waypoint are never replaced: each is installed only where
# there is none yet (the .deb's conffiles handle upgrades). The users file holds password
# hashes: 0640, group waypoint when that group exists (postinst sets it for the .deb).
install(CODE "
  set(etc \"\$ENV{DESTDIR}/etc/waypoint\")
  foreach(entry \"waypoint.yaml:OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ\"
                \"users.txt:OWNER_READ;OWNER_WRITE;GROUP_READ\")
    string(REPLACE \":\" \";\" parts \"\${entry}\")
    list(POP_FRONT parts name)
    if(EXISTS \"\${etc}/\${name}\")
      message(STATUS \"Kept: \${etc}/\${name} (already there, not replaced)\")
    else()
      file(INSTALL \"${PROJECT_SOURCE_DIR}/packaging/\${name}\" DESTINATION /etc/waypoint
           FILE_PERMISSIONS \${parts})
      if(\"\$ENV{DESTDIR}\" STREQUAL \"\" AND name STREQUAL \"users.txt\")
        execute_process(COMMAND getent group waypoint OUTPUT_QUIET RESULT_VARIABLE missing)
        if(missing EQUAL 0)
          execute_process(COMMAND chgrp waypoint \"\${etc}/\${name}\")
        endif()
      endif()
    endif()
  endforeach()
")
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")

set(CPACK_PACKAGE_NAME waypoint)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "waypoint maintainers <waypoint@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "SIP proxy and registrar")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
