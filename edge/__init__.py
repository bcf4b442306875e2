"""The edge gateway: plain Python that runs next to the machines and never imports Django."""
