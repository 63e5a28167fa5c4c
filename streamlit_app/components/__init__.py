"""Page components: each takes data from the search API and draws it."""
