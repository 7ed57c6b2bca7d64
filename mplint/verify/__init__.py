"""The runtime verifier: runs scripts under each start method and reports what happened.

It executes code, so it only runs when asked (``mplint verify``); linting never imports it.
"""
