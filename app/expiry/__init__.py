"""The periodic sweep that posts the expiry of credit lots and holds nobody touched."""
