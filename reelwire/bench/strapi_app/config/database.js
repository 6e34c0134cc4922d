const path = require('path');

// SQLite through better-sqlite3. DATABASE_FILENAME is relative to the project
// folder unless it is absolute.
module.exports = ({ env }) => ({
  connection: {
    client: 'sqlite',
    connection: {
      filename: path.resolve(__dirname, '..', env('DATABASE_FILENAME', '.tmp/data.db')),
    },
    useNullAsDefault: true,
  },
});
