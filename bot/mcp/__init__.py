"""The MCP server (`aura-sicd mcp`): the feedback loop as tools for IDEs and agents. See bot/mcp/server.py."""
