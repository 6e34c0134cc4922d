const { factories } = require('@strapi/strapi');

module.exports = factories.createCoreController('api::reel.reel');
