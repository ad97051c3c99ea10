"""API keys a buyer of API quota makes for their own calls; the host verifies and charges them."""
