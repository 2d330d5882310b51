"""The dashboard's page, script and style sheet (package data, served by ``liaison.web.server``)."""
