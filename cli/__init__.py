"""The `rationalyst` command line (installed as `rationalyst.cli`): the entry point
(main.py), the flag generator every command's parser comes from (flags.py), and the
commands that run engines or servers. `clients/` stays the HTTP-only library."""
