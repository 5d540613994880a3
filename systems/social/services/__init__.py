"""The social system's services: user, friend and recommendation."""
