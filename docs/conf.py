"""Sphinx configuration for renyicert's documentation."""

project = "renyicert"
author = "renyicert developers"
copyright = "2026, renyicert developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    # A copy button on every code block; the prompts (>>>, $) are not copied.
    "sphinx_copybutton",
    # MathJax 3 bundled into _static/mathjax: the formulas render with no network (the default loads it from a CDN).
    "sphinx-mathjax-offline",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"

# The theme of numpy and scipy: a wide content column (code blocks are not cut mid-line), a page
# table of contents, light and dark modes. Its assets are bundled; nothing is fetched at view time.
html_theme = "pydata_sphinx_theme"
html_title = "renyicert"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
# No left sidebar: the pages are listed in the header; its column would narrow the code blocks.
html_sidebars = {"**": []}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
