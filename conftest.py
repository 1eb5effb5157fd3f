# Only wires the plugin in; everything else lives in the loaderbench package.
pytest_plugins = ["loaderbench.suite.plugin"]
