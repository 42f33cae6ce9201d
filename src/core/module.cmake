target_sources(qaq PRIVATE ${CMAKE_CURRENT_LIST_DIR}/paths.cc)
qaq_add_test(qaq_core_test SRCS ${CMAKE_CURRENT_LIST_DIR}/status_test.cc LABELS unit)
