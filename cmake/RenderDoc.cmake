# cmake -DCMARK=... -DMD=page.md -DOUT=page.html -DTEMPLATE=page.html.in
#       -DNAV=nav.txt -P RenderDoc.cmake      (nav.txt: one "page|Title" a line)
#
# Renders one Markdown page of docs/ into the site: cmark turns it into an
# HTML fragment, links to other pages (x.md, x.md#part) become links to their
# rendered pages (x.html), and the fragment goes into the site's template with
# the navigation. Links to files outside docs/ are left alone; the site's
# link check (tests/http) fails on them.
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND "${CMARK}" --to html "${MD}"
  OUTPUT_VARIABLE body RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmark failed on ${MD}: ${err}")
endif()
string(REGEX REPLACE "href=\"([A-Za-z0-9_-]+)\\.md([#\"])" "href=\"\\1.html\\2" body "${body}")

file(STRINGS "${MD}" first_heading LIMIT_COUNT 1 REGEX "^# ")
string(REGEX REPLACE "^# +" "" title "${first_heading}")
if(title STREQUAL "")
  get_filename_component(title "${MD}" NAME_WE)
endif()

get_filename_component(self "${MD}" NAME_WE)
file(STRINGS "${NAV}" nav_items)
set(nav "")
foreach(item IN LISTS nav_items)
  string(REPLACE "|" ";" parts "${item}")
  list(GET parts 0 page)
  list(GET parts 1 label)
  if(page STREQUAL self)
    string(APPEND nav "      <li><a class=\"here\" href=\"${page}.html\">${label}</a></li>\n")
  else()
    string(APPEND nav "      <li><a href=\"${page}.html\">${label}</a></li>\n")
  endif()
endforeach()

file(READ "${TEMPLATE}" html)
string(REPLACE "@TITLE@" "${title}" html "${html}")
string(REPLACE "@NAV@" "${nav}" html "${html}")
string(REPLACE "@BODY@" "${body}" html "${html}")
file(WRITE "${OUT}" "${html}")
