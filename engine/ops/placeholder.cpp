// Placeholder translation unit until the ops registry lands.
