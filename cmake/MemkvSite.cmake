# memkv_docs_site(OUT_CC <var> FUNCTION <name> NAMESPACE <ns>)
#
# The documentation site, rendered at build time and embedded in the binary:
# every docs/*.md page through cmark (cmake/RenderDoc.cmake) into the
# template of docs/site/, plus the site's static files and the images next
# to the pages, into one generated source (cmake/EmbedFiles.cmake). Pages
# appear in the navigation in the order below; a page missing from the list
# still renders, after them.
find_program(MEMKV_CMARK cmark REQUIRED)

set(MEMKV_DOCS_ORDER
  "index|Overview"
  "getting-started|Getting started"
  "configuration|Configuration"
  "cli|Command line"
  "admin-api|Admin API"
  "client-api|Client API"
  "preload|Preload shim"
  "python|Python"
  "lmcache|LMCache"
  "sglang|SGLang"
  "nixl|NIXL"
  "rdma|RDMA"
  "wire-protocol|Wire protocol"
  "on-disk-format|On-disk format"
  "operations|Operations"
  "packaging|Packages"
  "performance|Performance")

# Writes a list one item a line, touching the file only when it changes.
function(memkv_write_lines path items)
  string(REPLACE ";" "\n" text "${items}")
  file(WRITE "${path}.new" "${text}\n")
  file(COPY_FILE "${path}.new" "${path}" ONLY_IF_DIFFERENT)
  file(REMOVE "${path}.new")
endfunction()

function(memkv_docs_site)
  cmake_parse_arguments(ARG "" "OUT_CC;FUNCTION;NAMESPACE" "" ${ARGN})
  set(docs "${PROJECT_SOURCE_DIR}/docs")
  file(GLOB pages CONFIGURE_DEPENDS "${docs}/*.md")
  set(nav "")
  foreach(item IN LISTS MEMKV_DOCS_ORDER)
    string(REPLACE "|" ";" parts "${item}")
    list(GET parts 0 page)
    if(EXISTS "${docs}/${page}.md")
      list(APPEND nav "${item}")
    endif()
  endforeach()
  foreach(md IN LISTS pages)
    get_filename_component(page "${md}" NAME_WE)
    if(NOT "${nav}" MATCHES "(^|;)${page}\\|")
      file(STRINGS "${md}" heading LIMIT_COUNT 1 REGEX "^# ")
      string(REGEX REPLACE "^# +" "" heading "${heading}")
      list(APPEND nav "${page}|${heading}")
    endif()
  endforeach()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/site")
  set(nav_file "${out_dir}/nav.txt")
  memkv_write_lines("${nav_file}" "${nav}")
  set(template "${docs}/site/page.html.in")
  set(embed "")
  set(rendered "")
  foreach(md IN LISTS pages)
    get_filename_component(page "${md}" NAME_WE)
    set(html "${out_dir}/${page}.html")
    add_custom_command(OUTPUT "${html}"
      COMMAND ${CMAKE_COMMAND} -DCMARK=${MEMKV_CMARK} -DMD=${md} -DOUT=${html}
              -DTEMPLATE=${template} -DNAV=${nav_file}
              -P "${PROJECT_SOURCE_DIR}/cmake/RenderDoc.cmake"
      DEPENDS "${md}" "${template}" "${nav_file}" "${PROJECT_SOURCE_DIR}/cmake/RenderDoc.cmake"
      COMMENT "Rendering docs/${page}.md" VERBATIM)
    list(APPEND rendered "${html}")
    list(APPEND embed "${page}.html=${html}")
  endforeach()
  # The site's own files, and the images pages link (docs/performance.svg).
  file(GLOB assets CONFIGURE_DEPENDS "${docs}/site/*.css" "${docs}/site/*.js" "${docs}/site/*.svg"
       "${docs}/*.svg")
  foreach(asset IN LISTS assets)
    get_filename_component(name "${asset}" NAME)
    list(APPEND embed "${name}=${asset}")
  endforeach()

  set(cc "${CMAKE_CURRENT_BINARY_DIR}/${ARG_FUNCTION}.cc")
  memkv_write_lines("${cc}.files" "${embed}")
  add_custom_command(OUTPUT "${cc}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${cc} -DNAMESPACE=${ARG_NAMESPACE} -DFUNCTION=${ARG_FUNCTION}
            -DFILES=${cc}.files -P "${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake"
    DEPENDS ${rendered} ${assets} "${cc}.files" "${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake"
    COMMENT "Embedding the documentation site" VERBATIM)
  set(${ARG_OUT_CC} "${cc}" PARENT_SCOPE)
endfunction()

# memkv_embed_files(OUT_CC <var> FUNCTION <name> NAMESPACE <ns> FILES url=path...)
# Embeds a fixed set of files (the dashboard) the same way.
function(memkv_embed_files)
  cmake_parse_arguments(ARG "" "OUT_CC;FUNCTION;NAMESPACE" "FILES" ${ARGN})
  set(cc "${CMAKE_CURRENT_BINARY_DIR}/${ARG_FUNCTION}.cc")
  set(deps "")
  foreach(pair IN LISTS ARG_FILES)
    string(REGEX REPLACE "^[^=]*=" "" path "${pair}")
    list(APPEND deps "${path}")
  endforeach()
  memkv_write_lines("${cc}.files" "${ARG_FILES}")
  add_custom_command(OUTPUT "${cc}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${cc} -DNAMESPACE=${ARG_NAMESPACE} -DFUNCTION=${ARG_FUNCTION}
            -DFILES=${cc}.files -P "${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake"
    DEPENDS ${deps} "${cc}.files" "${PROJECT_SOURCE_DIR}/cmake/EmbedFiles.cmake"
    COMMENT "Embedding ${ARG_FUNCTION}" VERBATIM)
  set(${ARG_OUT_CC} "${cc}" PARENT_SCOPE)
endfunction()
